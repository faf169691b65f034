package policy

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// reference is the brute-force meaning of a rule list: among the rules (and
// the built-in default) whose prefix contains the source, those of the
// greatest length win, their flags ORed, and the last of them names the rule.
func reference(rules []Rule, addr netip.Addr, auth bool) Decision {
	addr = addr.Unmap().WithZone("")
	if addr.IsMulticast() {
		return Decision{Action: Drop, Cause: FlagIgnore, Rule: -1}
	}
	bestBits, flags, rule := 0, builtinDefault, int32(-1)
	for i, r := range rules {
		p := r.Prefix
		if !p.IsValid() { // default of both families
			p = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if addr.Is6() {
				p = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		}
		if !p.Contains(addr) {
			continue
		}
		switch {
		case p.Bits() > bestBits:
			bestBits, flags, rule = p.Bits(), r.Flags, int32(i)
		case p.Bits() == bestBits:
			flags |= r.Flags
			rule = int32(i)
		}
	}
	return decide(flags, rule, auth)
}

// randomRules draws rules around a few base networks so that they nest and
// collide, with random lengths and flags.
func randomRules(rng *rand.Rand, n int) []Rule {
	bases := []netip.Addr{
		netip.MustParseAddr("192.0.2.0"), netip.MustParseAddr("10.0.0.0"),
		netip.MustParseAddr("2001:db8::"), netip.MustParseAddr("fe80::"),
	}
	rules := make([]Rule, n)
	for i := range rules {
		if rng.IntN(20) == 0 {
			rules[i] = Rule{Flags: Flags(rng.Uint32())}
			continue
		}
		a := perturb(rng, bases[rng.IntN(len(bases))])
		p, _ := a.Prefix(rng.IntN(a.BitLen() + 1))
		rules[i] = Rule{Prefix: p, Flags: Flags(rng.Uint32()) & (FlagIgnore | FlagNoServe | FlagRequireAuth | FlagLimited | FlagKoD)}
	}
	return rules
}

// perturb flips a few random bits of a, mostly in the low half.
func perturb(rng *rand.Rand, a netip.Addr) netip.Addr {
	b := a.AsSlice()
	for range rng.IntN(4) {
		i := len(b)/2 + rng.IntN(len(b)/2)
		if rng.IntN(4) == 0 {
			i = rng.IntN(len(b))
		}
		b[i] ^= 1 << rng.IntN(8)
	}
	r, _ := netip.AddrFromSlice(b)
	return r
}

func TestDecideMatchesBruteForce(t *testing.T) {
	seed := uint64(20261127)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for set := range 300 {
		rules := randomRules(rng, 1+rng.IntN(60))
		p, err := New(rules)
		if err != nil {
			t.Fatal(err)
		}
		for range 300 {
			var a netip.Addr
			if rng.IntN(2) == 0 {
				// Near a rule: its address with some bits flipped.
				r := rules[rng.IntN(len(rules))]
				if !r.Prefix.IsValid() {
					continue
				}
				a = perturb(rng, r.Prefix.Addr())
			} else {
				a = perturb(rng, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8}))
			}
			if rng.IntN(10) == 0 && a.Is4() {
				a = netip.AddrFrom16(a.As16()) // IPv4-mapped
			}
			auth := rng.IntN(2) == 0
			if got, want := p.Decide(a, auth), reference(rules, a, auth); got != want {
				t.Fatalf("set %d, %v auth=%v: Decide %+v, reference %+v\nrules: %v", set, a, auth, got, want, rules)
			}
		}
	}
}
