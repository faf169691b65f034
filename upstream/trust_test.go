package upstream

import (
	"slices"
	"testing"
)

// trusted and required mark a cand; ids make the system peer identifiable.
func marked(c Candidate, id uint64, trust, require bool) Candidate {
	c.ID, c.Trust, c.Require = id, trust, require
	return c
}

func mitigate(cands []Candidate, opts SelectOptions) Result {
	authed := make([]bool, len(cands))
	for i := range authed {
		authed[i] = true
	}
	return MitigateAuth(t0, cands, authed, AuthRequire, 0, opts)
}

// Two agreeing liars outvote one honest source, unless the honest one is trusted: then
// the liars, outside the trusted interval, are falsetickers.
func TestTrustOutvotesMajority(t *testing.T) {
	honest := cand(0, ms(20))
	liar := cand(ms(200), ms(20))
	opts := SelectOptions{MinSources: 1}
	plain := mitigate([]Candidate{marked(honest, 1, false, false), marked(liar, 2, false, false), marked(liar, 3, false, false)}, opts)
	if !plain.OK() || plain.Estimate.Offset < ms(150) {
		t.Fatalf("without trust: %+v, want the liars' majority", plain)
	}
	res := mitigate([]Candidate{marked(honest, 1, true, false), marked(liar, 2, false, false), marked(liar, 3, false, false)}, opts)
	if !res.OK() || res.Estimate.PeerID != 1 || res.Estimate.Offset.Abs() > ms(1) {
		t.Fatalf("with the honest one trusted: %+v", res)
	}
	if !slices.Equal(res.Falsetickers, []int{1, 2}) || !slices.Equal(res.Truechimers, []int{0}) {
		t.Errorf("truechimers %v falsetickers %v", res.Truechimers, res.Falsetickers)
	}
}

// An untrusted source wholly inside the trusted interval is combined with it; two trusted
// sources that disagree leave the gateway unsynchronised whatever the others say.
func TestTrustAdmitsContainedAndSplits(t *testing.T) {
	opts := SelectOptions{MinSources: 2}
	res := mitigate([]Candidate{marked(cand(0, ms(20)), 1, true, false), marked(cand(ms(2), ms(5)), 2, false, false)}, opts)
	if !res.OK() || len(res.Truechimers) != 2 {
		t.Fatalf("contained untrusted source: %+v", res)
	}
	split := mitigate([]Candidate{marked(cand(0, ms(5)), 1, true, false), marked(cand(ms(100), ms(5)), 2, true, false),
		marked(cand(0, ms(5)), 3, false, false), marked(cand(0, ms(5)), 4, false, false)}, opts)
	if split.OK() || split.Reason.Kind != ReasonNoMajority {
		t.Fatalf("two trusted sources disagreeing: %+v, want no majority", split)
	}
}

// With some source required, the gateway synchronises only while a required one agrees:
// not when the required source is a falseticker, nor when it is not even a candidate.
func TestRequire(t *testing.T) {
	opts := SelectOptions{MinSources: 1, Require: true}
	ok := mitigate([]Candidate{marked(cand(0, ms(10)), 1, false, true), marked(cand(ms(1), ms(10)), 2, false, false)}, opts)
	if !ok.OK() {
		t.Fatalf("required source agreeing: %+v", ok)
	}
	out := mitigate([]Candidate{marked(cand(ms(500), ms(10)), 1, false, true), marked(cand(0, ms(10)), 2, false, false),
		marked(cand(ms(1), ms(10)), 3, false, false)}, opts)
	if out.OK() || out.Reason.Kind != ReasonNoRequired || out.Reason.String() == "" {
		t.Fatalf("required source a falseticker: %+v", out)
	}
	absent := mitigate([]Candidate{marked(cand(0, ms(10)), 2, false, false), marked(cand(ms(1), ms(10)), 3, false, false)}, opts)
	if absent.OK() || absent.Reason.Kind != ReasonNoRequired || absent.Reason.Kind.RefID() == RefIDInit {
		t.Fatalf("required source unreachable: %+v", absent)
	}
	if why, ok := ExplainRefID(ReasonNoRequired.RefID()); !ok || why == "" {
		t.Error("REQD refid not explained")
	}
}
