package upstream

import (
	"fmt"
	"slices"
	"time"
)

// AuthSelectMode is chrony's authselectmode: whether unauthenticated sources may be
// selected. An unauthenticated source's time is only as good as the path to it, so
// timegate's default is AuthRequire.
type AuthSelectMode uint8

// Modes, as chrony names them.
const (
	// AuthRequire: unauthenticated sources are never selectable.
	AuthRequire AuthSelectMode = iota
	// AuthPrefer: unauthenticated sources are selectable only while no authenticated
	// source is.
	AuthPrefer
	// AuthMix: both are selectable, but while any authenticated source is selectable the
	// agreeing majority must include one: unauthenticated sources can add to the
	// authenticated ones, never outvote them all.
	AuthMix
	// AuthIgnore: authentication plays no part in selection.
	AuthIgnore
)

// ParseAuthSelectMode reads a mode by its chrony name.
func ParseAuthSelectMode(s string) (AuthSelectMode, error) {
	switch s {
	case "require", "":
		return AuthRequire, nil
	case "prefer":
		return AuthPrefer, nil
	case "mix":
		return AuthMix, nil
	case "ignore":
		return AuthIgnore, nil
	}
	return 0, fmt.Errorf("upstream: unknown authselectmode %q", s)
}

func (m AuthSelectMode) String() string {
	switch m {
	case AuthRequire:
		return "require"
	case AuthPrefer:
		return "prefer"
	case AuthMix:
		return "mix"
	case AuthIgnore:
		return "ignore"
	}
	return "unknown"
}

// Allows reports whether mode lets an unauthenticated source be selected at all; a
// configured source it refuses deserves a start-up warning.
func (m AuthSelectMode) Allows(authenticated bool) bool {
	return authenticated || m != AuthRequire
}

// MitigateAuth is Mitigate with authselectmode applied and the candidates' offsets
// brought to a common time. cands[i] is authenticated when authed[i]; freq is the
// frequency of true time against local time the soft clock has estimated
// (Status.Frequency). The indexes of the result refer to cands, as with Mitigate;
// candidates the mode refuses are listed as Unselectable.
//
// Each candidate's offset was measured at its own epoch, up to eight polls ago, on a local
// clock that timegate does not discipline: a system clock 40 ppm off moves every offset by
// 40 ms in a 1024 s poll, far more than the PHI·age (15 ppm) that root distance allows, so
// intervals measured at different epochs would stop overlapping. Selection and clustering
// therefore see every offset extrapolated to now at freq, as if measured against a
// disciplined clock (which ntpd and chrony have); the combined Offset is then taken back to
// the estimate's own Time, so that SoftClock.Update gets exactly RFC 5905's weighted mean.
func MitigateAuth(now time.Time, cands []Candidate, authed []bool, mode AuthSelectMode, freq float64, opts SelectOptions) Result {
	maxDist := opts.withDefaults().MaxDistance
	authOK := false // an authenticated candidate is selectable
	for i := range cands {
		authOK = authOK || (authed[i] && selectableAt(now, &cands[i], maxDist))
	}
	var keep []int
	for i := range cands {
		switch {
		case authed[i], mode == AuthIgnore, mode == AuthMix:
		case mode == AuthPrefer && !authOK:
		default:
			continue
		}
		keep = append(keep, i)
	}
	sub := make([]Candidate, 0, len(keep))
	for _, i := range keep {
		c := cands[i]
		c.Stats.Offset += dur(freq * now.Sub(c.Stats.Epoch).Seconds())
		sub = append(sub, c)
	}
	sub, keep, distrusted, trustOK := applyTrust(sub, keep, opts.withDefaults(), now)
	res := Mitigate(now, sub, opts)
	if !trustOK {
		res = Result{Selection: Selection{Reason: Reason{Kind: ReasonNoMajority, Of: len(distrusted)}}}
	}
	if res.OK() {
		res.Estimate.Offset -= dur(freq * now.Sub(res.Estimate.Time).Seconds())
	}
	remap(&res, keep)
	for i := range cands {
		switch {
		case slices.Contains(distrusted, i):
			res.Falsetickers = append(res.Falsetickers, i)
		case !slices.Contains(keep, i):
			res.Unselectable = append(res.Unselectable, i)
		}
	}
	slices.Sort(res.Unselectable)
	slices.Sort(res.Falsetickers)
	if res.OK() && mode == AuthMix && authOK && !slices.ContainsFunc(res.Truechimers, func(i int) bool { return authed[i] }) {
		res.Reason = Reason{Kind: ReasonNoMajority, Of: len(res.Truechimers) + len(res.Falsetickers)}
		res.Survivors, res.Estimate = nil, Estimate{}
	}
	if res.OK() && opts.Require && !requireMet(&res, cands) {
		res.Reason = Reason{Kind: ReasonNoRequired}
		res.Survivors, res.Estimate = nil, Estimate{}
	}
	return res
}

// selectableAt is the test Select applies before intersecting (RFC 5905 fit()).
func selectableAt(now time.Time, c *Candidate, maxDist time.Duration) bool {
	return c.Leap != LeapUnsynch && c.Stratum != 0 && c.Stratum < MaxStratum &&
		!c.Stats.Epoch.IsZero() && c.RootDistance(now) <= maxDist
}

// remap rewrites the indexes of a result over a subset of candidates (sub[j] was
// cands[keep[j]]) into indexes over all of them.
func remap(res *Result, keep []int) {
	for _, xs := range [][]int{res.Truechimers, res.Falsetickers, res.Unselectable, res.Survivors} {
		for j, k := range xs {
			xs[j] = keep[k]
		}
	}
	if res.OK() {
		res.Estimate.Peer = keep[res.Estimate.Peer]
	}
}
