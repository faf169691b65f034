package upstream

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

func TestRefIDForAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want uint32
	}{
		{"192.0.2.1", 0xc0000201},
		{"::ffff:192.0.2.1", 0xc0000201}, // IPv4-mapped counts as IPv4
		{"::1", 0xcf404dc8},              // first octets of MD5(::1), RFC 5905 §7.3
		{"2001:db8::1", 0x39ab9b37},
	} {
		if got := RefIDForAddr(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("%s: %#08x, want %#08x", tc.addr, got, tc.want)
		}
	}
	if RefIDInit != 0x494e4954 {
		t.Errorf("INIT is %#08x", RefIDInit)
	}
}

func TestRootDistance(t *testing.T) {
	c := Candidate{
		Stats: Stats{
			Updated: t0, Delay: ms(20), Dispersion: ms(3), Jitter: ms(2),
		},
		RootDelay: ms(30), RootDispersion: ms(7),
	}
	// (30 + 20)/2 + 7 + 3 + PHI·100 + 2 ms
	want := 0.025 + 0.007 + 0.003 + PHI*100 + 0.002
	if got := c.RootDistance(t0.Add(100 * time.Second)).Seconds(); math.Abs(got-want) > 1e-9 {
		t.Fatalf("root distance %.9f, want %.9f", got, want)
	}
	// The delay term never falls below MINDISP/2, and age never counts backwards.
	c = Candidate{Stats: Stats{Updated: t0}}
	if got := c.RootDistance(t0.Add(-time.Hour)); got != MinDisp/2 {
		t.Fatalf("floor %v", got)
	}
}

func TestDurSaturates(t *testing.T) {
	if dur(math.NaN()) != 0 || dur(1e300) != math.MaxInt64 || dur(-1e300) != math.MinInt64 || dur(1.5e-9) != 2 {
		t.Fatal("dur conversion")
	}
}
