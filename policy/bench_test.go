package policy

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// benchPolicy builds ~1000 random rules of both families, as a large
// enterprise allow/deny list, and source addresses near them.
func benchPolicy(b testing.TB) ([]Rule, *Policy, []netip.Addr) {
	rng := rand.New(rand.NewPCG(1, 2))
	rules := make([]Rule, 1000)
	for i := range rules {
		var a netip.Addr
		var bits int
		if i%2 == 0 {
			a = netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), 0})
			bits = 8 + rng.IntN(25)
		} else {
			var x [16]byte
			x[0], x[1] = 0x20, 0x01
			for j := 2; j < 8; j++ {
				x[j] = byte(rng.Uint32())
			}
			a = netip.AddrFrom16(x)
			bits = 16 + rng.IntN(113)
		}
		p, _ := a.Prefix(bits)
		rules[i] = Rule{Prefix: p, Flags: FlagLimited | FlagKoD}
	}
	p, err := New(rules)
	if err != nil {
		b.Fatal(err)
	}
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		addrs[i] = perturb(rng, rules[rng.IntN(len(rules))].Prefix.Addr())
	}
	return rules, p, addrs
}

func BenchmarkDecide(b *testing.B) {
	_, p, addrs := benchPolicy(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Decide(addrs[i%len(addrs)], false)
		i++
	}
}

// BenchmarkDecideLinear is the brute-force scan of the same rules, for
// comparison with the trie.
func BenchmarkDecideLinear(b *testing.B) {
	rules, _, addrs := benchPolicy(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		reference(rules, addrs[i%len(addrs)], false)
		i++
	}
}

func BenchmarkDecideSeed(b *testing.B) {
	p := mustPolicy(b, seedLines...)
	a := netip.MustParseAddr("198.51.100.7")
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(a, false)
	}
}
