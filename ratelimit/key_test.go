package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

// refSame is the reference for aggregation, built on netip.Prefix: two
// sources share a bucket exactly when their unmapped addresses are of one
// family and fall in the same configured prefix.
func refSame(a, b netip.Addr, p4, p6 int) bool {
	a, b = a.Unmap().WithZone(""), b.Unmap().WithZone("")
	if a.Is4() != b.Is4() {
		return false
	}
	bits := p6
	if a.Is4() {
		bits = p4
	}
	pa, _ := a.Prefix(bits)
	pb, _ := b.Prefix(bits)
	return pa == pb
}

func addrFrom(b []byte) netip.Addr {
	switch {
	case len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16]))
	case len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.Addr{}
}

// FuzzKey checks the two-AND masking against netip.Prefix for every pair of
// addresses and prefix lengths, and that Allow, given anything, returns a
// known verdict and never tracks more entries than the table holds.
func FuzzKey(f *testing.F) {
	seeds := []struct {
		a, b   string
		p4, p6 uint8
	}{
		{"192.0.2.1", "192.0.2.2", 32, 64},
		{"192.0.2.1", "192.0.2.200", 24, 64},
		{"::ffff:192.0.2.1", "192.0.2.1", 32, 64},
		{"2001:db8::1", "2001:db8::ffff", 32, 64},
		{"2001:db8::1", "2001:db8:0:1::1", 32, 64},
		{"2001:db8::1", "2001:db8::2", 32, 127},
		{"0.0.0.0", "::", 32, 64},
		{"255.255.255.255", "255.255.0.0", 16, 128},
	}
	for _, s := range seeds {
		a, b := netip.MustParseAddr(s.a).AsSlice(), netip.MustParseAddr(s.b).AsSlice()
		f.Add(a, b, s.p4, s.p6)
	}
	f.Add([]byte{}, []byte{1, 2, 3}, uint8(0), uint8(200))
	f.Fuzz(func(t *testing.T, ab, bb []byte, p4, p6 uint8) {
		c := DefaultConfig()
		c.Size = MinSize
		c.PrefixV4 = MinPrefixV4 + int(p4)%(33-MinPrefixV4)
		c.PrefixV6 = MinPrefixV6 + int(p6)%(129-MinPrefixV6)
		a, b := addrFrom(ab), addrFrom(bb)
		m := makeMasks(c.PrefixV4, c.PrefixV6)
		ka, oka := m.key(a)
		kb, okb := m.key(b)
		if oka != a.IsValid() || okb != b.IsValid() {
			t.Fatalf("key validity: %v %v for %v %v", oka, okb, a, b)
		}
		if oka && okb {
			if got, want := ka == kb, refSame(a, b, c.PrefixV4, c.PrefixV6); got != want {
				t.Fatalf("/%d /%d: %v and %v same key = %v, reference says %v", c.PrefixV4, c.PrefixV6, a, b, got, want)
			}
		}
		tb, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range []netip.Addr{a, b, a, b} {
			if v := tb.Allow(x, t0.Add(time.Duration(i))); v > KoD {
				t.Fatalf("Allow(%v) = %d", x, v)
			}
		}
		if st := tb.Stats(); st.Entries > st.Capacity || st.Passed+st.Dropped+st.Leaked+st.KoD != 4 {
			t.Fatalf("stats %+v after 4 requests", st)
		}
	})
}
