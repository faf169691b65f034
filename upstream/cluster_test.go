package upstream

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// withJitter sets a candidate's jitter and ID.
func withJitter(c Candidate, id uint64, jitter time.Duration) Candidate {
	c.ID, c.Stats.Jitter = id, jitter
	c.RootDispersion -= jitter // keep the root distance as given to cand
	return c
}

func TestClusterPrunesOutlier(t *testing.T) {
	cands := []Candidate{
		withJitter(cand(ms(0.1), ms(50)), 1, ms(0.1)),
		withJitter(cand(ms(-0.1), ms(50)), 2, ms(0.1)),
		withJitter(cand(ms(20), ms(50)), 3, ms(0.1)), // agrees within its distance, but far from the rest
		withJitter(cand(ms(0.2), ms(50)), 4, ms(0.1)),
		withJitter(cand(0, ms(50)), 5, ms(0.1)),
	}
	surv, psi := Cluster(t0, cands, []int{0, 1, 2, 3, 4}, SelectOptions{})
	if slices.Contains(surv, 2) || len(surv) < DefaultMinCluster {
		t.Fatalf("survivors %v", surv)
	}
	if psi <= 0 || psi > ms(1) {
		t.Fatalf("selection jitter %v", psi)
	}
	// Never below minclust, however spread out.
	wide := []Candidate{cand(0, ms(500)), cand(ms(100), ms(500)), cand(ms(-100), ms(500)), cand(ms(300), ms(500))}
	if surv, _ := Cluster(t0, wide, []int{0, 1, 2, 3}, SelectOptions{}); len(surv) != 3 || slices.Contains(surv, 3) {
		t.Fatalf("wide survivors %v", surv)
	}
	// Stops as soon as the spread is below the quietest source's own jitter.
	quiet := []Candidate{
		withJitter(cand(0, ms(50)), 1, ms(5)), withJitter(cand(ms(1), ms(50)), 2, ms(5)),
		withJitter(cand(ms(2), ms(50)), 3, ms(5)), withJitter(cand(ms(3), ms(50)), 4, ms(5)),
	}
	if surv, _ := Cluster(t0, quiet, []int{0, 1, 2, 3}, SelectOptions{}); len(surv) != 4 {
		t.Fatalf("quiet survivors %v", surv)
	}
}

func TestClusterSystemPeer(t *testing.T) {
	base := []Candidate{
		withJitter(cand(0, ms(30)), 1, ms(0.1)),
		withJitter(cand(ms(0.1), ms(10)), 2, ms(0.1)), // best root distance
		withJitter(cand(ms(0.2), ms(20)), 3, ms(0.1)),
	}
	check := func(name string, cands []Candidate, opts SelectOptions, want int) {
		t.Helper()
		surv, _ := Cluster(t0, cands, []int{0, 1, 2}, opts)
		if surv[0] != want {
			t.Errorf("%s: system peer %d, want %d (survivors %v)", name, surv[0], want, surv)
		}
	}
	check("best merit", base, SelectOptions{}, 1)
	check("no clock hop", base, SelectOptions{SystemPeer: 3}, 2)
	check("unknown current", base, SelectOptions{SystemPeer: 9}, 1)

	lowerStratum := slices.Clone(base)
	lowerStratum[0].Stratum = 1
	lowerStratum[1].Stratum, lowerStratum[2].Stratum = 2, 2
	check("stratum first", lowerStratum, SelectOptions{}, 0)
	check("hop to lower stratum", lowerStratum, SelectOptions{SystemPeer: 2}, 0)

	prefer := slices.Clone(base)
	prefer[2].Prefer = true
	check("prefer", prefer, SelectOptions{SystemPeer: 1}, 2)
}

func TestClusterNeverPrunesPrefer(t *testing.T) {
	cands := []Candidate{
		withJitter(cand(0, ms(50)), 1, ms(0.1)),
		withJitter(cand(ms(0.1), ms(50)), 2, ms(0.1)),
		withJitter(cand(ms(-0.1), ms(50)), 3, ms(0.1)),
		withJitter(cand(ms(30), ms(50)), 4, ms(0.1)),
	}
	cands[3].Prefer = true
	surv, _ := Cluster(t0, cands, []int{0, 1, 2, 3}, SelectOptions{})
	if surv[0] != 3 || len(surv) != 3 {
		t.Fatalf("survivors %v, want the prefer source first and one other pruned", surv)
	}
}

func TestCombineWeightsByRootDistance(t *testing.T) {
	cands := []Candidate{
		withJitter(cand(ms(1), ms(10)), 1, ms(0.5)),
		withJitter(cand(ms(4), ms(40)), 2, ms(2)),
		withJitter(cand(ms(-2), ms(20)), 3, ms(1)),
	}
	cands[1].Stats.Epoch = t0.Add(-8 * time.Second)
	cands[0].Stats.Delay, cands[0].RootDelay = ms(3), ms(7)
	cands[0].RootDispersion -= ms(5) // the delay added 5 ms of distance
	cands[0].Stratum, cands[0].RefID = 2, 0xc0000201
	now := t0.Add(10 * time.Second)
	est := Combine(now, cands, []int{0, 1, 2})

	var y, z, w, ts float64
	for _, c := range cands {
		x := c.RootDistance(now).Seconds()
		y += 1 / x
		z += c.Stats.Offset.Seconds() / x
		d := (c.Stats.Offset - cands[0].Stats.Offset).Seconds()
		w += d * d / x
		ts += c.Stats.Epoch.Sub(t0).Seconds() / x
	}
	if got, want := est.Offset.Seconds(), z/y; math.Abs(got-want) > 1e-9 {
		t.Fatalf("offset %.9f, want %.9f", got, want)
	}
	if got, want := est.Time.Sub(t0).Seconds(), ts/y; math.Abs(got-want) > 1e-9 {
		t.Fatalf("time %.9f, want %.9f", got, want)
	}
	jitter := math.Hypot(0.5e-3, math.Sqrt(w/y))
	if got := est.Jitter.Seconds(); math.Abs(got-jitter) > 1e-9 {
		t.Fatalf("jitter %.9f, want %.9f", got, jitter)
	}
	p := cands[0]
	disp := p.RootDispersion.Seconds() + jitter + max(PHI*10, MinDisp.Seconds())
	if got := est.RootDispersion.Seconds(); math.Abs(got-disp) > 1e-9 {
		t.Fatalf("root dispersion %.9f, want %.9f", got, disp)
	}
	if est.RootDelay != ms(10) || est.Stratum != 2 || est.RefID != 0xc0000201 || est.PeerID != 1 ||
		est.Peer != 0 || est.Survivors != 3 || !est.Newest.Equal(t0) {
		t.Fatalf("system peer fields %+v", est)
	}
	// The offset lies between the survivors' and nearest the closest one.
	if est.Offset < ms(-2) || est.Offset > ms(4) || (est.Offset-ms(1)).Abs() > (est.Offset-ms(-2)).Abs() {
		t.Fatalf("offset %v not pulled towards the best source", est.Offset)
	}
}

func TestLeapVote(t *testing.T) {
	c := func(l Leap) Candidate { x := cand(0, ms(10)); x.Leap = l; return x }
	for _, tc := range []struct {
		leaps []Leap
		want  Leap
	}{
		{[]Leap{LeapInsert, LeapNone, LeapNone}, LeapNone},
		{[]Leap{LeapInsert, LeapInsert, LeapNone}, LeapInsert},
		{[]Leap{LeapDelete, LeapDelete, LeapDelete}, LeapDelete},
		{[]Leap{LeapInsert, LeapDelete}, LeapNone},
		{[]Leap{LeapInsert, LeapInsert, LeapNone, LeapNone}, LeapNone},
	} {
		var cands []Candidate
		var idx []int
		for i, l := range tc.leaps {
			cands = append(cands, c(l))
			idx = append(idx, i)
		}
		if got := Combine(t0, cands, idx).Leap; got != tc.want {
			t.Errorf("%v: leap %d, want %d", tc.leaps, got, tc.want)
		}
	}
}

func TestMitigate(t *testing.T) {
	cands := []Candidate{
		withJitter(cand(ms(0.3), ms(20)), 1, ms(0.2)),
		withJitter(cand(2*time.Second, ms(5)), 2, ms(0.1)), // liar with the best distance
		withJitter(cand(ms(-0.2), ms(30)), 3, ms(0.4)),
		withJitter(cand(ms(0.1), ms(25)), 4, ms(0.3)),
		withJitter(cand(2*time.Second+ms(1), ms(5)), 5, ms(0.1)), // its accomplice
	}
	res := Mitigate(t0, cands, SelectOptions{})
	if !res.OK() || !slices.Equal(res.Truechimers, []int{0, 2, 3}) || !slices.Equal(res.Falsetickers, []int{1, 4}) {
		t.Fatalf("selection %+v", res.Selection)
	}
	if res.Estimate.Offset.Abs() > ms(1) || res.Estimate.PeerID != 1 || len(res.Survivors) != 3 {
		t.Fatalf("estimate %+v survivors %v", res.Estimate, res.Survivors)
	}
	// With one honest source gone the liars still cannot win, and two are too few.
	res = Mitigate(t0, slices.Delete(slices.Clone(cands), 3, 4), SelectOptions{})
	if res.OK() || res.Reason.String() != "no majority of 4 sources agrees" {
		t.Fatalf("four sources: %v", res.Reason)
	}
}

func TestReasonStrings(t *testing.T) {
	for _, tc := range []struct {
		r    Reason
		want string
	}{
		{Reason{}, "synchronised"},
		{Reason{Kind: ReasonStarting}, "not yet synchronised"},
		{Reason{Kind: ReasonTooFew, Agree: 2, Of: 3}, "only 2 of minsources 3 agree"},
		{Reason{Kind: ReasonHoldover}, "holdover limit exceeded"},
		{Reason{Kind: ReasonHoldover, Cause: ReasonTooFew, Agree: 1, Of: 3}, "holdover limit exceeded (only 1 of minsources 3 agree)"},
		{Reason{Kind: ReasonPanic}, "offset beyond panic threshold refused"},
		{Reason{Kind: ReasonBeforeBuild}, "time before build date refused"},
		{Reason{Kind: 99}, "unknown reason 99"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}

// TestSelectionJitterMatchesDefinition checks the O(n) form against the RFC 5905 §11.2.2
// definition, over seeded random offsets.
func TestSelectionJitterMatchesDefinition(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	for range 2000 {
		n := 2 + rng.IntN(20)
		cands := make([]Candidate, n)
		surv := make([]int, n)
		base := time.Duration(rng.Int64N(int64(time.Hour))) // large common offset: cancellation
		for i := range cands {
			cands[i] = cand(base+ms(rng.NormFloat64()), ms(10))
			surv[i] = i
		}
		_, psiMax, _ := selectionJitter(cands, surv)
		want := 0.0
		for _, i := range surv {
			sum := 0.0
			for _, j := range surv {
				d := (cands[i].Stats.Offset - cands[j].Stats.Offset).Seconds()
				sum += d * d
			}
			want = max(want, math.Sqrt(sum/float64(n-1)))
		}
		if math.Abs(psiMax-want) > 1e-9 {
			t.Fatalf("n %d: ψ_max %.12f, want %.12f", n, psiMax, want)
		}
	}
}
