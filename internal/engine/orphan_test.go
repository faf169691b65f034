package engine

import (
	"net/netip"
	"testing"

	"timegate/upstream"
)

func TestOrphanSplit(t *testing.T) {
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	mk := func(stratum uint8, addr string) (upstream.Candidate, *assoc) {
		return upstream.Candidate{Stratum: stratum, RefID: upstream.RefIDForAddr(ip(addr))},
			&assoc{addr: netip.AddrPortFrom(ip(addr), 123)}
	}
	run := func(local string, srcs ...[2]any) ([]upstream.Candidate, int) {
		r := &runner{Engine: &Engine{opts: Options{OrphanStratum: 10,
			LocalRefID: func(netip.Addr) uint32 { return upstream.RefIDForAddr(ip(local)) }}}}
		var cands []upstream.Candidate
		var as []*assoc
		for _, s := range srcs {
			c, a := mk(s[0].(uint8), s[1].(string))
			cands, as = append(cands, c), append(as, a)
		}
		kept, authed, keptAs, best := r.orphanSplit(cands, make([]bool, len(cands)), as)
		if len(kept) != len(authed) || len(kept) != len(keptAs) {
			t.Fatal("slices out of step")
		}
		return kept, best
	}
	// A real source wins; orphans never join the normal selection.
	kept, best := run("10.0.0.4", [2]any{uint8(2), "192.0.2.1"}, [2]any{uint8(10), "10.0.0.3"}, [2]any{uint8(11), "10.0.0.1"})
	if len(kept) != 1 || kept[0].Stratum != 2 || best != -1 {
		t.Errorf("with a real source: %+v, %d", kept, best)
	}
	// Only orphans: follow the one at the local stratum with the smallest ID
	// when it is smaller than ours; a stratum-11 source is always ignored.
	kept, best = run("10.0.0.4", [2]any{uint8(10), "10.0.0.5"}, [2]any{uint8(10), "10.0.0.3"}, [2]any{uint8(11), "10.0.0.1"})
	if len(kept) != 1 || best != 1 || kept[0].RefID != upstream.RefIDForAddr(ip("10.0.0.3")) {
		t.Errorf("orphans only: %+v, %d", kept, best)
	}
	// Ours is the smallest: we are the orphan the others follow.
	kept, best = run("10.0.0.2", [2]any{uint8(10), "10.0.0.5"}, [2]any{uint8(10), "10.0.0.3"})
	if len(kept) != 0 || best != -1 {
		t.Errorf("smallest ID ours: %+v, %d", kept, best)
	}
	// Without orphan mode nothing is filtered.
	r := &runner{Engine: &Engine{}}
	c, a := mk(10, "10.0.0.3")
	if kept, _, _, _ := r.orphanSplit([]upstream.Candidate{c}, []bool{true}, []*assoc{a}); len(kept) != 1 {
		t.Error("filtered without orphan mode")
	}
}
