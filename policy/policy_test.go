package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func mustPolicy(t testing.TB, lines ...string) *Policy {
	t.Helper()
	rules := make([]Rule, len(lines))
	for i, l := range lines {
		w := strings.Fields(l)
		if len(w) > 0 && w[0] == "restrict" {
			w = w[1:]
		}
		r, err := ParseRestrict(w)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		rules[i] = r
	}
	p, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// seedLines are the restrict lines of the issue, as an ntpd user writes them.
var seedLines = []string{
	"restrict default kod nomodify notrap nopeer noquery",
	"restrict 192.0.2.0 mask 255.255.255.0 nomodify notrap",
	"restrict -6 default kod nomodify notrap nopeer noquery",
	"restrict -6 ::1",
	"restrict 127.0.0.1",
}

// TestSeedConfig: everyone gets time; everyone but the trusted /24 and the
// loopback addresses is rate limited by the built-in default, and those get
// a RATE kiss on violations because their default rule says kod.
func TestSeedConfig(t *testing.T) {
	p := mustPolicy(t, seedLines...)
	// The default rules say nopeer: symmetric-active requests are refused
	// there, answered from the trusted /24 and loopback.
	limitedKoD := Decision{Action: Serve, Limited: true, KoD: true, NoPeer: true}
	free := Decision{Action: Serve}
	tests := []struct {
		addr string
		want Decision
		rule int
	}{
		{"198.51.100.7", limitedKoD, 0},
		{"192.0.3.1", limitedKoD, 0},
		{"192.0.2.0", free, 1},
		{"192.0.2.255", free, 1},
		{"::ffff:192.0.2.9", free, 1}, // IPv4-mapped is IPv4
		{"2001:db8::1", limitedKoD, 2},
		{"::2", limitedKoD, 2},
		{"::1", free, 3},
		{"127.0.0.1", free, 4},
		{"127.0.0.2", limitedKoD, 0},
	}
	for _, tt := range tests {
		for _, auth := range []bool{false, true} {
			d := p.Decide(netip.MustParseAddr(tt.addr), auth)
			want := tt.want
			want.Rule = tt.rule
			if d != want {
				t.Errorf("%s auth=%v: %+v, want %+v", tt.addr, auth, d, want)
			}
		}
	}
}

func TestNoRulesServesEveryoneLimited(t *testing.T) {
	empty, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var nilPolicy *Policy
	want := Decision{Action: Serve, Limited: true, Rule: -1}
	for _, p := range []*Policy{empty, nilPolicy} {
		for _, a := range []string{"192.0.2.1", "2001:db8::1", "::1", "127.0.0.1", "::ffff:10.0.0.1"} {
			if d := p.Decide(netip.MustParseAddr(a), false); d != want {
				t.Errorf("%s: %+v, want %+v", a, d, want)
			}
		}
	}
	if empty.Len() != 0 || nilPolicy.Len() != 0 {
		t.Error("Len of an empty policy is not 0")
	}
}

func TestDecisions(t *testing.T) {
	p := mustPolicy(t,
		"10.0.0.0/8 ignore kod",
		"10.1.0.0/16 noserve",
		"10.2.0.0/16 noserve kod",
		"10.3.0.0/16 require-auth",
		"10.4.0.0/16 require-auth kod limited",
		"10.5.0.0/16 limited",
		"10.5.5.0/24", // more specific, no limited: exempt
		"10.6.0.0/16 ignore noserve require-auth kod",
	)
	tests := []struct {
		addr string
		auth bool
		want Decision
	}{
		{"10.9.9.9", false, Decision{Action: Drop, Cause: FlagIgnore, Rule: 0}}, // ignore never kisses
		{"10.1.0.1", true, Decision{Action: Drop, Cause: FlagNoServe, Rule: 1}},
		{"10.2.0.1", true, Decision{Action: KissDeny, Cause: FlagNoServe, Limited: true, Rule: 2}},
		{"10.3.0.1", false, Decision{Action: Drop, Cause: FlagRequireAuth, Rule: 3}},
		{"10.3.0.1", true, Decision{Action: Serve, Rule: 3}},
		{"10.4.0.1", false, Decision{Action: KissRestrict, Cause: FlagRequireAuth, Limited: true, Rule: 4}},
		{"10.4.0.1", true, Decision{Action: Serve, Limited: true, KoD: true, Rule: 4}},
		{"10.5.0.1", false, Decision{Action: Serve, Limited: true, Rule: 5}},
		{"10.5.5.1", false, Decision{Action: Serve, Rule: 6}},
		{"10.6.0.1", true, Decision{Action: Drop, Cause: FlagIgnore, Rule: 7}},
		{"11.0.0.1", false, Decision{Action: Serve, Limited: true, Rule: -1}},
	}
	for _, tt := range tests {
		if d := p.Decide(netip.MustParseAddr(tt.addr), tt.auth); d != tt.want {
			t.Errorf("%s auth=%v: %+v, want %+v", tt.addr, tt.auth, d, tt.want)
		}
	}
}

func TestSamePrefixMerges(t *testing.T) {
	p := mustPolicy(t,
		"192.0.2.0/24 kod",
		"192.0.2.0 mask 255.255.255.0 limited",
		"default noserve",
		"-4 default kod",
	)
	if d := p.Decide(netip.MustParseAddr("192.0.2.1"), false); d != (Decision{Action: Serve, Limited: true, KoD: true, Rule: 1}) {
		t.Errorf("merged /24: %+v", d)
	}
	// default (both families) and -4 default merge into the IPv4 root, on
	// top of the built-in limited.
	if d := p.Decide(netip.MustParseAddr("198.51.100.1"), false); d != (Decision{Action: KissDeny, Cause: FlagNoServe, Limited: true, Rule: 3}) {
		t.Errorf("IPv4 default: %+v", d)
	}
	if d := p.Decide(netip.MustParseAddr("2001:db8::1"), false); d != (Decision{Action: Drop, Cause: FlagNoServe, Rule: 2}) {
		t.Errorf("IPv6 default: %+v", d)
	}
}

func TestFamiliesAreSeparate(t *testing.T) {
	p := mustPolicy(t, "-4 default ignore", "::/0 noserve")
	if d := p.Decide(netip.MustParseAddr("2001:db8::1"), false); d.Cause != FlagNoServe {
		t.Errorf("IPv6 source: %+v, want noserve", d)
	}
	if d := p.Decide(netip.MustParseAddr("192.0.2.1"), false); d.Cause != FlagIgnore {
		t.Errorf("IPv4 source: %+v, want ignore", d)
	}
	// ::/0 must not catch IPv4-mapped sources: they are IPv4.
	if d := p.Decide(netip.MustParseAddr("::ffff:192.0.2.1"), false); d.Cause != FlagIgnore {
		t.Errorf("IPv4-mapped source: %+v, want ignore", d)
	}
}

func TestInvalidAndMulticastDropped(t *testing.T) {
	for _, p := range []*Policy{nil, mustPolicy(t, seedLines...), mustPolicy(t, "224.0.0.0/4", "ff00::/8")} {
		for _, a := range []netip.Addr{{}, netip.MustParseAddr("224.0.1.1"), netip.MustParseAddr("::ffff:239.1.2.3"), netip.MustParseAddr("ff02::101")} {
			if d := p.Decide(a, true); d.Action != Drop || d.Cause != FlagIgnore {
				t.Errorf("%v: %+v, want drop", a, d)
			}
		}
	}
}

func TestZonedSourceMatches(t *testing.T) {
	p := mustPolicy(t, "fe80::/10 noserve")
	if d := p.Decide(netip.MustParseAddr("fe80::1%eth0"), false); d.Cause != FlagNoServe {
		t.Errorf("zoned source: %+v", d)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(make([]Rule, MaxRules+1)); !errors.Is(err, ErrTooManyRules) {
		t.Errorf("too many rules: %v", err)
	}
	mapped := Rule{Prefix: netip.MustParsePrefix("::ffff:192.0.2.0/120")}
	if _, err := New([]Rule{mapped}); !errors.Is(err, ErrAddress) {
		t.Errorf("mapped prefix: %v", err)
	}
	if _, err := New(make([]Rule, MaxRules)); err != nil {
		t.Errorf("MaxRules rules: %v", err)
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	p := mustPolicy(t, seedLines...)
	a := netip.MustParseAddr("2001:db8::1")
	if n := testing.AllocsPerRun(1000, func() { p.Decide(a, false) }); n != 0 {
		t.Fatalf("Decide allocates %.1f times", n)
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{Serve: "serve", Drop: "drop", KissDeny: "kiss-deny", KissRestrict: "kiss-restrict", 7: "unknown"} {
		if a.String() != want {
			t.Errorf("Action(%d) = %q, want %q", a, a.String(), want)
		}
	}
}

// TestCompressedTrieSize: the built policy keeps under two nodes per rule
// per family (rule nodes plus branch nodes), whatever the prefix lengths.
func TestCompressedTrieSize(t *testing.T) {
	rules, p, _ := benchPolicy(t)
	if n := len(p.v4.nodes) + len(p.v6.nodes); n > 2*len(rules)+2 {
		t.Errorf("%d rules built %d nodes", len(rules), n)
	}
}
