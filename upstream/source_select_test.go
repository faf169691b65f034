package upstream_test

import (
	"slices"
	"testing"
	"time"

	"timegate/upstream"
)

func cand(id uint64, off time.Duration, epoch time.Time) upstream.Candidate {
	return upstream.Candidate{ID: id, Stratum: 2, RootDispersion: time.Millisecond,
		Stats: upstream.Stats{Epoch: epoch, Updated: epoch, Offset: off, Delay: 2 * time.Millisecond,
			Dispersion: time.Millisecond, Jitter: 100 * time.Microsecond, Samples: 8}}
}

// TestMitigateAuthModes: which sources each authselectmode lets synchronise the gateway.
func TestMitigateAuthModes(t *testing.T) {
	now := t0
	// Three unauthenticated sources agree on +1 s; two authenticated ones on 0.
	cands := []upstream.Candidate{cand(1, 0, now), cand(2, 0, now), cand(3, time.Second, now),
		cand(4, time.Second, now), cand(5, time.Second, now)}
	authed := []bool{true, true, false, false, false}
	opts := upstream.SelectOptions{MinSources: 2}
	for _, tc := range []struct {
		mode upstream.AuthSelectMode
		ok   bool
		true []int
	}{
		{upstream.AuthRequire, true, []int{0, 1}},
		{upstream.AuthPrefer, true, []int{0, 1}},
		// The unauthenticated majority outvotes the authenticated sources: refused.
		{upstream.AuthMix, false, nil},
		{upstream.AuthIgnore, true, []int{2, 3, 4}},
	} {
		res := upstream.MitigateAuth(now, cands, authed, tc.mode, 0, opts)
		if res.OK() != tc.ok || (tc.ok && !slices.Equal(res.Truechimers, tc.true)) {
			t.Errorf("%v: ok %v truechimers %v (%v), want %v %v", tc.mode, res.OK(), res.Truechimers, res.Reason, tc.ok, tc.true)
		}
		if tc.ok && !slices.Contains(tc.true, res.Estimate.Peer) {
			t.Errorf("%v: system peer %d not among %v", tc.mode, res.Estimate.Peer, tc.true)
		}
		if tc.mode == upstream.AuthRequire && !slices.Equal(res.Unselectable, []int{2, 3, 4}) {
			t.Errorf("require: unselectable %v", res.Unselectable)
		}
	}
	// Without selectable authenticated sources, prefer and mix fall back to the others;
	// require does not.
	for _, mode := range []upstream.AuthSelectMode{upstream.AuthPrefer, upstream.AuthMix, upstream.AuthRequire} {
		res := upstream.MitigateAuth(now, cands[2:], authed[2:], mode, 0, opts)
		if res.OK() != (mode != upstream.AuthRequire) {
			t.Errorf("%v with only unauthenticated sources: ok %v (%v)", mode, res.OK(), res.Reason)
		}
	}
}

// TestMitigateAuthProjectsOffsets: samples taken at different times on a local clock
// running 50 ppm slow still agree once brought to a common time, and the combined offset
// is the plain weighted mean at the estimate's own time.
func TestMitigateAuthProjectsOffsets(t *testing.T) {
	const freq = 50e-6 // true time gains 50 µs per second on local time
	now := t0
	var cands []upstream.Candidate
	for i, age := range []time.Duration{0, 600 * time.Second, 1200 * time.Second} {
		epoch := now.Add(-age)
		// The true offset at epoch: 30 ms now, less 50 ppm of the age.
		cands = append(cands, cand(uint64(i+1), 30*time.Millisecond-time.Duration(freq*float64(age)), epoch))
	}
	authed := []bool{true, true, true}
	if res := upstream.MitigateAuth(now, cands, authed, upstream.AuthRequire, 0, upstream.SelectOptions{}); res.OK() {
		t.Fatalf("without projection the 60 ms spread should not intersect: %+v", res.Selection)
	}
	res := upstream.MitigateAuth(now, cands, authed, upstream.AuthRequire, freq, upstream.SelectOptions{})
	if !res.OK() || len(res.Survivors) != 3 {
		t.Fatalf("projected: %+v", res.Selection)
	}
	est := res.Estimate
	want := 30*time.Millisecond - time.Duration(freq*float64(now.Sub(est.Time)))
	if (est.Offset - want).Abs() > time.Microsecond {
		t.Fatalf("combined offset %v at %v, want %v", est.Offset, est.Time, want)
	}
}
