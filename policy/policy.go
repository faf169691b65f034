// Package policy decides who gets time from timegate, from ntpd-style
// restrict rules (ntp.conf(5), "Access Control Support"), so that an
// operator's existing lines read unchanged:
//
//	restrict default kod nomodify notrap nopeer noquery
//	restrict 192.0.2.0 mask 255.255.255.0 nomodify notrap
//	restrict -6 default kod nomodify notrap nopeer noquery
//	restrict -6 ::1
//	restrict 127.0.0.1
//
// The most specific rule (longest prefix) containing the source decides.
// Rules naming the same prefix are merged, their flags ORed, as ntpd and
// NTPsec do ("restrict bob X" then "restrict bob Y" is "restrict bob X Y").
// "default" covers both families unless written "-4 default" or "-6 default".
//
// A built-in default entry, IPv4 and IPv6, carries "limited" (as NTPsec's
// does): with no rules at all everyone is served and rate limited, and a
// "restrict default ..." line adds its flags to it. A more specific rule
// without "limited" (like the 192.0.2.0/24 and loopback lines above) exempts
// its network from rate limiting, exactly as in ntpd.
//
// # Wiring with package ratelimit
//
// The server asks Decide first, then, if Decision.Limited, the rate table:
//
//	d := pol.Decide(src, claimsAuth)
//	if d.Action == policy.Drop: drop (count by d.Cause)
//	if d.Limited, v := tbl.Allow(src, now):
//		v == ratelimit.Drop: drop (rate limited)
//		v == ratelimit.KoD and d.Action == policy.Serve:
//			d.KoD: send a RATE kiss; else drop (rate limited)
//		otherwise (Pass, Leak, or KoD on a kiss action): go on
//	d.Action == Serve: answer; KissDeny: DENY kiss; KissRestrict: RSTR kiss
//
// Kiss actions always come with Limited set, so DENY and RSTR kisses draw on
// the source's rate budget: a spoofer cannot turn them into a stream at its
// victim. The table returns ratelimit.KoD only when built with Config.KoD;
// the config loader sets that when the ratelimit directive says "kod" or
// when any rule has the kod flag, and maps chrony's "ratelimit ... kod N"
// alone to an extra "restrict default kod" rule, so either spelling works.
//
// The package is pure: no I/O, no logging, no package-level mutable state.
package policy

import (
	"fmt"
	"net/netip"
)

// MaxRules bounds the work and memory of New: while building, the trie has
// one node per prefix bit of each rule, so 16384 rules cost at most ~30 MB
// even if every one were a distinct IPv6 /128 (the built Policy keeps under
// two nodes per rule).
const MaxRules = 1 << 14

// Action is what the server does with a request.
type Action uint8

// Actions.
const (
	// Serve: answer with time (subject to rate limiting if Limited).
	Serve Action = iota
	// Drop: send nothing.
	Drop
	// KissDeny: answer with a DENY kiss (noserve with kod).
	KissDeny
	// KissRestrict: answer with an RSTR kiss (require-auth with kod, and
	// the request is not authenticated).
	KissRestrict
)

var actionNames = [...]string{"serve", "drop", "kiss-deny", "kiss-restrict"}

// String returns a short stable name for logs and metric labels.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "unknown"
}

// Decision is the policy's answer for one source.
type Decision struct {
	Action Action
	// Cause is the flag that refused service: FlagIgnore, FlagNoServe or
	// FlagRequireAuth; 0 when the action is Serve.
	Cause Flags
	// Limited: pass the request through the rate table before answering.
	Limited bool
	// KoD: a ratelimit.KoD verdict becomes a RATE kiss, not a drop.
	KoD bool
	// NoPeer: the deciding entry has nopeer: symmetric-active (mode 1)
	// requests are refused, client requests unaffected.
	NoPeer bool
	// Rule is the index, in the rules given to New, of the last rule merged
	// into the deciding entry; -1 for the built-in default alone.
	Rule int
}

// builtinDefault is the entry every policy starts with at 0.0.0.0/0 and ::/0.
const builtinDefault = FlagLimited

// Policy is an immutable set of rules. A nil *Policy behaves as one built
// from no rules. Decide is safe for concurrent use.
type Policy struct {
	v4, v6 trie
	n      int
}

// New builds a policy from rules, in order; see the package documentation
// for merging and defaults.
func New(rules []Rule) (*Policy, error) {
	if len(rules) > MaxRules {
		return nil, fmt.Errorf("%w: %d, at most %d", ErrTooManyRules, len(rules), MaxRules)
	}
	v4, v6 := newBuilder(builtinDefault), newBuilder(builtinDefault)
	for i, r := range rules {
		pr := r.Prefix
		switch {
		case !pr.IsValid():
			v4.insert(0, 0, 0, r.Flags, i)
			v6.insert(0, 0, 0, r.Flags, i)
		case pr.Addr().Is4In6() || pr.Addr().Zone() != "":
			return nil, fmt.Errorf("%w: rule %d (%v): IPv4-mapped or zoned", ErrAddress, i, pr)
		case pr.Addr().Is4():
			hi, _ := split(pr.Masked().Addr())
			v4.insert(hi, 0, pr.Bits(), r.Flags, i)
		default:
			hi, lo := split(pr.Masked().Addr())
			v6.insert(hi, lo, pr.Bits(), r.Flags, i)
		}
	}
	return &Policy{v4: v4.compress(), v6: v6.compress(), n: len(rules)}, nil
}

// Len returns the number of rules the policy was built from.
func (p *Policy) Len() int {
	if p == nil {
		return 0
	}
	return p.n
}

// Decide returns the decision for a request from addr; authenticated says
// whether the request carries NTS or symmetric-key authentication (a false
// claim fails verification later and is dropped there). IPv4-mapped IPv6
// sources are matched as IPv4. An invalid or multicast source is dropped
// whatever the rules say, as ntpd does: no host sends from a group address,
// and an answer to one would reach every member. Decide does not allocate.
func (p *Policy) Decide(addr netip.Addr, authenticated bool) Decision {
	if !addr.IsValid() || addr.IsMulticast() {
		return Decision{Action: Drop, Cause: FlagIgnore, Rule: -1}
	}
	if p == nil {
		return decide(builtinDefault, -1, authenticated)
	}
	addr = addr.Unmap()
	hi, lo := split(addr)
	var e *entry
	if addr.Is4() {
		e = p.v4.lookup(hi, 0, 32)
	} else {
		e = p.v6.lookup(hi, lo, 128)
	}
	return decide(e.flags, e.rule, authenticated)
}

// decide applies one entry's flags, most restrictive first (ntpd's order).
func decide(f Flags, rule int32, authenticated bool) Decision {
	d := Decision{Rule: int(rule), NoPeer: f&FlagNoPeer != 0}
	switch {
	case f&FlagIgnore != 0:
		d.Action, d.Cause = Drop, FlagIgnore
		return d
	case f&FlagNoServe != 0:
		d.Action, d.Cause = KissDeny, FlagNoServe
	case f&FlagRequireAuth != 0 && !authenticated:
		d.Action, d.Cause = KissRestrict, FlagRequireAuth
	default:
		d.Limited = f&FlagLimited != 0
		d.KoD = f&FlagKoD != 0
		return d
	}
	if f&FlagKoD == 0 {
		d.Action = Drop
		return d
	}
	d.Limited = true // a refusal kiss draws on the source's rate budget
	return d
}
