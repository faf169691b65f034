package upstream

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// cand returns a selectable candidate at offset whose root distance at t0 is exactly
// halfWidth (≥ MinDisp/2): no delay, jitter or dispersion, only root dispersion.
func cand(offset, halfWidth time.Duration) Candidate {
	return Candidate{
		Stats:          Stats{Epoch: t0, Updated: t0, Offset: offset},
		RootDispersion: halfWidth - MinDisp/2,
		Stratum:        1,
	}
}

func TestSelectReasons(t *testing.T) {
	far := cand(0, 2*time.Second)
	unsync := cand(0, ms(10))
	unsync.Leap = LeapUnsynch
	strat := cand(0, ms(10))
	strat.Stratum = MaxStratum
	nodata := cand(0, ms(10))
	nodata.Stats.Epoch = time.Time{}
	for _, tc := range []struct {
		name  string
		cands []Candidate
		want  string
	}{
		{"none", nil, "no source has a usable sample"},
		{"far", []Candidate{far, far}, "all sources beyond maxdistance"},
		{"unselectable", []Candidate{unsync, strat, nodata, far}, "no selectable sources"},
		{"split", []Candidate{cand(0, ms(10)), cand(time.Second, ms(10))}, "no majority of 2 sources agrees"},
		{"two", []Candidate{cand(0, ms(10)), cand(ms(1), ms(10)), far}, "only 2 of minsources 3 agree"},
		{"three", []Candidate{cand(0, ms(10)), cand(ms(1), ms(10)), cand(ms(-1), ms(10))}, "synchronised"},
	} {
		sel := Select(t0, tc.cands, SelectOptions{})
		if got := sel.Reason.String(); got != tc.want {
			t.Errorf("%s: reason %q, want %q", tc.name, got, tc.want)
		}
		if sel.OK() != (tc.want == "synchronised") {
			t.Errorf("%s: OK %v", tc.name, sel.OK())
		}
	}
}

func TestSelectMaxDistanceOption(t *testing.T) {
	cands := []Candidate{cand(0, ms(300)), cand(0, ms(300)), cand(0, ms(300))}
	if sel := Select(t0, cands, SelectOptions{MaxDistance: ms(200)}); sel.Reason.Kind != ReasonBeyondMaxDistance {
		t.Fatalf("maxdistance 200 ms: %v", sel.Reason)
	}
	if sel := Select(t0, cands, SelectOptions{}); !sel.OK() || len(sel.Truechimers) != 3 {
		t.Fatalf("default maxdistance: %+v", sel)
	}
	// Distance includes PHI·age: a candidate ages out of selection.
	later := t0.Add(time.Duration((DefaultMaxDistance-ms(300)).Seconds()/PHI+1) * time.Second)
	if sel := Select(later, cands, SelectOptions{}); sel.Reason.Kind != ReasonBeyondMaxDistance {
		t.Fatalf("aged candidates: %v", sel.Reason)
	}
}

// bruteSelect is the intersection algorithm written from its definition: for each allowed
// number of falsetickers f, the intersection spans the lowest to the highest point covered by
// at least n − f correctness intervals (found by counting coverage at every endpoint), and
// it is accepted when at most f midpoints lie outside it.
func bruteSelect(cands []Candidate, maxDist time.Duration) (truech, falset, unsel []int, low, high time.Duration, ok bool) {
	var sel []int
	for i := range cands {
		c := &cands[i]
		if c.Leap == LeapUnsynch || c.Stratum == 0 || c.Stratum >= MaxStratum || c.Stats.Epoch.IsZero() ||
			c.RootDistance(t0) > maxDist {
			unsel = append(unsel, i)
			continue
		}
		sel = append(sel, i)
	}
	lo := func(i int) time.Duration { return cands[i].Stats.Offset - cands[i].RootDistance(t0) }
	hi := func(i int) time.Duration { return cands[i].Stats.Offset + cands[i].RootDistance(t0) }
	n := len(sel)
	for f := 0; 2*f < n; f++ {
		found := false
		for _, i := range sel {
			for _, p := range []time.Duration{lo(i), hi(i)} {
				cover := 0
				for _, j := range sel {
					if lo(j) <= p && p <= hi(j) {
						cover++
					}
				}
				if cover < n-f {
					continue
				}
				if !found || p < low {
					low = p
				}
				if !found || p > high {
					high = p
				}
				found = true
			}
		}
		if !found {
			continue
		}
		truech, falset = nil, nil
		for _, i := range sel {
			if m := cands[i].Stats.Offset; m < low || m > high {
				falset = append(falset, i)
			} else {
				truech = append(truech, i)
			}
		}
		if len(falset) <= f {
			return truech, falset, unsel, low, high, true
		}
	}
	return nil, sel, unsel, 0, 0, false
}

// randomCandidates draws n candidates on a coarse grid so that edges and midpoints often
// coincide, with some unselectable ones.
func randomCandidates(rng *rand.Rand, n int) []Candidate {
	cands := make([]Candidate, n)
	for i := range cands {
		off := ms(float64(rng.IntN(41) - 20))
		width := ms(float64(1 + rng.IntN(15)))
		if rng.IntN(8) == 0 {
			width = ms(float64(rng.IntN(3000)))
		}
		cands[i] = cand(off, max(width, MinDisp/2))
		switch rng.IntN(30) {
		case 0:
			cands[i].Leap = LeapUnsynch
		case 1:
			cands[i].Stratum = MaxStratum
		}
	}
	return cands
}

func TestSelectMatchesBruteForce(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for c := range 20000 {
		cands := randomCandidates(rng, rng.IntN(12))
		sel := Select(t0, cands, SelectOptions{MinSources: 1})
		tr, fa, un, low, high, ok := bruteSelect(cands, DefaultMaxDistance)
		if ok != (len(sel.Truechimers) > 0) || !slices.Equal(sel.Truechimers, tr) ||
			!slices.Equal(sel.Falsetickers, fa) || !slices.Equal(sel.Unselectable, un) ||
			ok && (sel.Low != low || sel.High != high) {
			t.Fatalf("case %d: Select %+v\nbrute force: ok %v true %v false %v unsel %v [%v, %v]\ncands %+v",
				c, sel, ok, tr, fa, un, low, high, cands)
		}
		// Whatever wins holds a strict majority of the selectable candidates.
		if n := len(sel.Truechimers) + len(sel.Falsetickers); ok && 2*len(sel.Truechimers) <= n {
			t.Fatalf("case %d: %d truechimers of %d", c, len(sel.Truechimers), n)
		}
	}
}

// TestSelectMajorityWins: any strict majority of intervals that all contain one another's
// offsets beats any minority whose intervals stay clear of them, however well the
// minority agrees among itself.
func TestSelectMajorityWins(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for c := range 20000 {
		n := 1 + rng.IntN(15)
		k := n/2 + 1 + rng.IntN(n-n/2) // strict majority
		truth := ms(rng.Float64()*2000 - 1000)
		spread := ms(rng.Float64() * 20)
		cands := make([]Candidate, 0, n)
		hullLo, hullHi := truth, truth
		for range k {
			off := truth + time.Duration((rng.Float64()*2-1)*float64(spread))
			width := 2*spread + ms(0.5+rng.Float64()*50) // covers every honest offset
			cands = append(cands, cand(off, width))
			hullLo, hullHi = min(hullLo, off-width), max(hullHi, off+width)
		}
		coordinated := rng.IntN(2) == 0
		side := time.Duration(1 - 2*rng.IntN(2))
		for range n - k {
			width := ms(0.5 + rng.Float64()*200)
			gap := ms(1 + rng.Float64()*3000)
			if coordinated {
				gap = ms(500 + rng.Float64())
			} else {
				side = time.Duration(1 - 2*rng.IntN(2))
			}
			off := hullHi + gap + width
			if side < 0 {
				off = hullLo - gap - width
			}
			cands = append(cands, cand(off, width))
		}
		perm := rng.Perm(n)
		shuffled := make([]Candidate, n)
		for i, p := range perm {
			shuffled[p] = cands[i]
		}
		sel := Select(t0, shuffled, SelectOptions{MinSources: 1})
		var want []int
		for i := range k {
			want = append(want, perm[i])
		}
		slices.Sort(want)
		if !sel.OK() || !slices.Equal(sel.Truechimers, want) {
			t.Fatalf("case %d: n %d majority %d: got %+v, want truechimers %v", c, n, k, sel, want)
		}
	}
}

func TestSelectPermutationInvariant(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	for c := range 5000 {
		cands := randomCandidates(rng, 1+rng.IntN(12))
		base := Select(t0, cands, SelectOptions{MinSources: 1})
		perm := rng.Perm(len(cands))
		shuffled := make([]Candidate, len(cands))
		for i, p := range perm {
			shuffled[p] = cands[i]
		}
		got := Select(t0, shuffled, SelectOptions{MinSources: 1})
		var back []int
		for _, i := range base.Truechimers {
			back = append(back, perm[i])
		}
		slices.Sort(back)
		if !slices.Equal(got.Truechimers, back) || got.Low != base.Low || got.High != base.High {
			t.Fatalf("case %d: order changed the result: %+v vs %+v", c, got, base)
		}
	}
}
