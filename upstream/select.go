package upstream

import (
	"cmp"
	"slices"
	"time"
)

// Selection defaults.
const (
	// DefaultMaxDistance is ntpd's MAXDISTANCE (1.5 s; RFC 5905 suggests 1 s, chrony uses
	// 3 s): a source whose root distance is larger cannot bound the error of its time
	// usefully and is not selectable.
	DefaultMaxDistance = 1500 * time.Millisecond
	// DefaultMinSources is timegate's minsources: three sources must agree before the
	// gateway calls itself synchronised, so that one liar can neither be believed alone nor
	// split a pair into a stalemate.
	DefaultMinSources = 3
	// DefaultMinCluster is NMIN (RFC 5905 §11.2.2): clustering stops pruning at three
	// survivors.
	DefaultMinCluster = 3
)

// SelectOptions configure selection and clustering. The zero value gives the defaults.
type SelectOptions struct {
	// MaxDistance is maxdistance; ≤ 0 means DefaultMaxDistance.
	MaxDistance time.Duration
	// MinSources is minsources: fewer truechimers leave the gateway unsynchronised;
	// ≤ 0 means DefaultMinSources.
	MinSources int
	// MinCluster is minclust; ≤ 0 means DefaultMinCluster.
	MinCluster int
	// SystemPeer is the ID of the current system peer (0: none). If it survives at the
	// stratum of the best survivor it stays, so the gateway does not hop between equally
	// good sources (RFC 5905 Appendix A.5.5.1).
	SystemPeer uint64
	// Require: some configured source has chrony's `require` option, so the gateway
	// synchronises only while one of those (Candidate.Require) is a truechimer, even
	// when the required sources are unreachable and not among the candidates.
	Require bool
}

func (o SelectOptions) withDefaults() SelectOptions {
	if o.MaxDistance <= 0 {
		o.MaxDistance = DefaultMaxDistance
	}
	if o.MinSources <= 0 {
		o.MinSources = DefaultMinSources
	}
	if o.MinCluster <= 0 {
		o.MinCluster = DefaultMinCluster
	}
	return o
}

// Selection is the outcome of the intersection algorithm. Indexes refer to the candidate
// slice given to Select and are in increasing order.
type Selection struct {
	// Truechimers have their offset inside the intersection [Low, High].
	Truechimers []int
	// Falsetickers are selectable candidates outside it; when no majority agrees, every
	// selectable candidate is listed here, since none can be vouched for.
	Falsetickers []int
	// Unselectable candidates never entered the intersection: unsynchronised, stratum 0 or
	// ≥ 16, no samples, or root distance beyond maxdistance.
	Unselectable []int
	// Low and High bound the intersection of the majority's correctness intervals, as
	// offsets; meaningful when Truechimers is not empty.
	Low, High time.Duration
	// Reason is ReasonNone when at least minsources candidates agree, and otherwise says why
	// the gateway cannot synchronise.
	Reason Reason
}

// OK reports whether enough sources agree to synchronise.
func (s *Selection) OK() bool { return s.Reason.Kind == ReasonNone }

// interval is a candidate's correctness interval [lo, hi] around its offset mid.
type interval struct {
	idx         int
	lo, mid, hi time.Duration
}

// edge is one end of a correctness interval, for the sweep.
type edge struct {
	pos   time.Duration
	lower bool
}

// Select separates truechimers from falsetickers (RFC 5905 §11.2.1, clock_select in
// Appendix A.5.5.1). Each selectable candidate claims that the true offset lies within its
// root distance of its own offset. Allowing f = 0, 1, ... falsetickers while f is less than
// half the candidates, the algorithm looks for the smallest interval [Low, High] holding
// every point that at least n − f correctness intervals cover, and accepts it when at most f
// candidates have their offset outside it. The first f that works wins, so an answer always
// has the offsets of more than half of the selectable candidates inside the intersection:
// a minority of liars, however well they agree among themselves, cannot win.
func Select(now time.Time, cands []Candidate, opts SelectOptions) Selection {
	opts = opts.withDefaults()
	var sel Selection
	ivs, far := selectable(now, cands, opts.MaxDistance, &sel)
	switch {
	case len(cands) == 0:
		sel.Reason = Reason{Kind: ReasonNoSources}
		return sel
	case len(ivs) == 0 && far == len(cands):
		sel.Reason = Reason{Kind: ReasonBeyondMaxDistance}
		return sel
	case len(ivs) == 0:
		sel.Reason = Reason{Kind: ReasonNoSelectable}
		return sel
	}
	low, high, ok := intersect(ivs)
	if !ok {
		for _, iv := range ivs {
			sel.Falsetickers = append(sel.Falsetickers, iv.idx)
		}
		sel.Reason = Reason{Kind: ReasonNoMajority, Of: len(ivs)}
		return sel
	}
	sel.Low, sel.High = low, high
	for _, iv := range ivs {
		if iv.mid >= low && iv.mid <= high {
			sel.Truechimers = append(sel.Truechimers, iv.idx)
		} else {
			sel.Falsetickers = append(sel.Falsetickers, iv.idx)
		}
	}
	if len(sel.Truechimers) < opts.MinSources {
		sel.Reason = Reason{Kind: ReasonTooFew, Agree: len(sel.Truechimers), Of: opts.MinSources}
	}
	return sel
}

// selectable builds the correctness intervals of the candidates that may take part (the
// RFC's accept()/fit()), records the others in sel.Unselectable, and counts how many of
// those were refused only for their distance.
func selectable(now time.Time, cands []Candidate, maxDist time.Duration, sel *Selection) ([]interval, int) {
	ivs := make([]interval, 0, len(cands))
	far := 0
	for i := range cands {
		c := &cands[i]
		if c.Leap == LeapUnsynch || c.Stratum == 0 || c.Stratum >= MaxStratum || c.Stats.Epoch.IsZero() {
			sel.Unselectable = append(sel.Unselectable, i)
			continue
		}
		lambda := c.RootDistance(now)
		if lambda > maxDist {
			sel.Unselectable = append(sel.Unselectable, i)
			far++
			continue
		}
		off := c.Stats.Offset
		ivs = append(ivs, interval{idx: i, lo: off - lambda, mid: off, hi: off + lambda})
	}
	return ivs, far
}

// intersect runs the intersection algorithm over ivs and returns the accepted [low, high].
// Edges are sorted once; for each f, one upward sweep finds the lowest point covered by
// n − f intervals and one downward sweep the highest. Intervals are closed: at equal
// positions lower edges come first, so touching intervals intersect.
func intersect(ivs []interval) (low, high time.Duration, ok bool) {
	n := len(ivs)
	edges := make([]edge, 0, 2*n)
	for _, iv := range ivs {
		edges = append(edges, edge{pos: iv.lo, lower: true}, edge{pos: iv.hi})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := cmp.Compare(a.pos, b.pos); c != 0 {
			return c
		}
		switch {
		case a.lower == b.lower:
			return 0
		case a.lower:
			return -1
		}
		return 1
	})
	for f := 0; 2*f < n; f++ {
		lo, okLo := sweepUp(edges, n-f)
		hi, okHi := sweepDown(edges, n-f)
		if !okLo || !okHi {
			continue
		}
		out := 0
		for _, iv := range ivs {
			if iv.mid < lo || iv.mid > hi {
				out++
			}
		}
		if out <= f {
			return lo, hi, true
		}
	}
	return 0, 0, false
}

// sweepUp returns the lowest position covered by at least need intervals.
func sweepUp(edges []edge, need int) (time.Duration, bool) {
	depth := 0
	for _, e := range edges {
		if !e.lower {
			depth--
			continue
		}
		depth++
		if depth >= need {
			return e.pos, true
		}
	}
	return 0, false
}

// sweepDown returns the highest position covered by at least need intervals.
func sweepDown(edges []edge, need int) (time.Duration, bool) {
	depth := 0
	for i := len(edges) - 1; i >= 0; i-- {
		e := edges[i]
		if e.lower {
			depth--
			continue
		}
		depth++
		if depth >= need {
			return e.pos, true
		}
	}
	return 0, false
}
