package upstream

import (
	"slices"
	"time"
)

// chrony's `trust` and `require` server options, applied around RFC 5905's selection.
//
// trust: a trusted source can be outvoted only by other trusted sources. When any trusted
// candidate is selectable, the trusted ones are intersected among themselves first; the
// others take part only if their correctness interval lies wholly inside the interval
// where the trusted majority agrees, so they can sharpen the estimate but never move it
// outside what the trusted sources vouch for (chrony's sources.c does the same).
//
// require: when some configured source has it, the gateway synchronises only while at
// least one of those is among the truechimers: a set of unauthenticated sources can add
// to an authenticated, required one, but can never synchronise the gateway on its own.

// applyTrust narrows sub (whose candidate j is cands[keep[j]]) as `trust` says, and
// returns the narrowed sub and keep, and the indexes into cands the trusted majority
// rejected. ok is false when the trusted candidates have no majority among themselves:
// the gateway then cannot synchronise, whatever the others say.
func applyTrust(sub []Candidate, keep []int, sel SelectOptions, now time.Time) (nsub []Candidate, nkeep, rejected []int, ok bool) {
	var trusted []Candidate
	var tkeep []int
	for j := range sub {
		if sub[j].Trust && selectableAt(now, &sub[j], sel.MaxDistance) {
			trusted = append(trusted, sub[j])
			tkeep = append(tkeep, j)
		}
	}
	if len(trusted) == 0 {
		return sub, keep, nil, true
	}
	one := sel
	one.MinSources = 1
	ts := Select(now, trusted, one)
	if !ts.OK() {
		for j := range sub {
			rejected = append(rejected, keep[j])
		}
		return nil, nil, rejected, false
	}
	for j := range sub {
		c := &sub[j]
		// Candidates that cannot be selected at all stay, for Select to list them as
		// unselectable rather than as disagreeing.
		in := !selectableAt(now, c, sel.MaxDistance)
		switch {
		case in:
		case c.Trust:
			in = slices.Contains(ts.Truechimers, slices.Index(tkeep, j))
		default:
			lambda := c.RootDistance(now)
			in = c.Stats.Offset-lambda >= ts.Low && c.Stats.Offset+lambda <= ts.High
		}
		if in {
			nsub = append(nsub, *c)
			nkeep = append(nkeep, keep[j])
		} else {
			rejected = append(rejected, keep[j])
		}
	}
	return nsub, nkeep, rejected, true
}

// requireMet reports whether a truechimer of res is a required candidate.
func requireMet(res *Result, cands []Candidate) bool {
	return slices.ContainsFunc(res.Truechimers, func(i int) bool { return cands[i].Require })
}
