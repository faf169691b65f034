package gateway

import (
	"net/netip"
	"testing"
	"time"

	"timegate/internal/config"
	"timegate/ntp"
)

func testGate(t *testing.T, text string) *gate {
	t.Helper()
	cfg, err := config.Parse("gate.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	g, err := buildGate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// admitN sends n requests from addr one millisecond apart and counts actions.
func admitN(g *gate, addr string, auth ntp.AuthKind, n int) map[ntp.Action]int {
	a := netip.MustParseAddr(addr)
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	got := map[ntp.Action]int{}
	for i := range n {
		got[g.Admit(a, now.Add(time.Duration(i)*time.Millisecond), auth).Action]++
	}
	return got
}

// The ntpd documentation's lines, as issue 5 asks: everyone is served; the
// default rule is limited (as NTPsec's built-in default) and has kod, so a
// flooding source gets RATE kisses; 192.0.2.0/24 has its own rule without
// `limited` and is never rate limited.
func TestGateNtpdExample(t *testing.T) {
	g := testGate(t, "ratelimit interval 3 burst 8 leak 2\n"+
		"restrict default kod nomodify notrap nopeer noquery\n"+
		"restrict 192.0.2.0 mask 255.255.255.0 nomodify notrap\n")
	if got := admitN(g, "192.0.2.77", ntp.AuthNone, 200); got[ntp.ActionReply] != 200 {
		t.Errorf("192.0.2.0/24 must be served without limit: %v", got)
	}
	got := admitN(g, "198.51.100.9", ntp.AuthNone, 200)
	if got[ntp.ActionReply] < 8 || got[ntp.ActionReply] > 8+200/2 || got[ntp.ActionKoD] == 0 || got[ntp.ActionDrop] == 0 {
		t.Errorf("a flooding default source: %v, want its burst, some leak, RATE kisses and drops", got)
	}
	if got[ntp.ActionKoD] > 1 {
		t.Errorf("%d RATE kisses within 200 ms: kisses must themselves be limited", got[ntp.ActionKoD])
	}
}

func TestGateRefusals(t *testing.T) {
	g := testGate(t, "ratelimit interval 3 burst 8 leak 2\n"+
		"restrict 203.0.113.0/24 noserve kod\n"+
		"restrict 203.0.114.0/24 noserve\n"+
		"restrict 198.51.100.0/24 require-auth kod\n"+
		"restrict 192.0.2.66 ignore\n")
	cases := []struct {
		addr   string
		auth   ntp.AuthKind
		action ntp.Action
		kiss   ntp.KissCode
		reason ntp.Reason
	}{
		{"203.0.113.1", ntp.AuthNone, ntp.ActionKoD, ntp.KissDENY, ntp.ReasonPolicy},
		{"203.0.114.1", ntp.AuthNone, ntp.ActionDrop, 0, ntp.ReasonPolicy},
		{"198.51.100.1", ntp.AuthNone, ntp.ActionKoD, ntp.KissRSTR, ntp.ReasonRequireAuth},
		{"198.51.100.2", ntp.AuthNTS, ntp.ActionReply, 0, ntp.ReasonOK},
		{"198.51.100.3", ntp.AuthKey, ntp.ActionReply, 0, ntp.ReasonOK},
		{"192.0.2.66", ntp.AuthNTS, ntp.ActionDrop, 0, ntp.ReasonPolicy},
		{"2001:db8::1", ntp.AuthNone, ntp.ActionReply, 0, ntp.ReasonOK},
	}
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for _, c := range cases {
		adm := g.Admit(netip.MustParseAddr(c.addr), now, c.auth)
		if adm.Action != c.action || adm.Kiss != c.kiss || adm.Reason != c.reason {
			t.Errorf("%s auth %v: %+v, want action %v kiss %v reason %v", c.addr, c.auth, adm, c.action, c.kiss, c.reason)
		}
	}
	// Refusal kisses draw on the source's rate budget: a spoofer cannot
	// turn them into a stream at its victim.
	if got := admitN(g, "203.0.113.2", ntp.AuthNone, 100); got[ntp.ActionKoD] > 8+100/2 || got[ntp.ActionDrop] == 0 {
		t.Errorf("DENY kisses are not rate limited: %v", got)
	}
}

func TestGateRateLimitOff(t *testing.T) {
	g := testGate(t, "ratelimit off\n")
	if g.table != nil {
		t.Fatal("ratelimit off built a table")
	}
	if got := admitN(g, "198.51.100.9", ntp.AuthNone, 1000); got[ntp.ActionReply] != 1000 {
		t.Errorf("ratelimit off: %v", got)
	}
}

// Campaign finding: `ratelimit ... kod` without any `restrict ... kod` rule
// sent no RATE kiss, contrary to the README. The kiss must come from the
// ratelimit directive alone; without either, over-limit requests are dropped.
func TestGateRatelimitKoDWithoutRestrictKoD(t *testing.T) {
	g := testGate(t, "ratelimit interval 3 burst 8 leak 2 kod\n")
	if got := admitN(g, "198.51.100.9", ntp.AuthNone, 200); got[ntp.ActionKoD] != 1 {
		t.Errorf("ratelimit kod, 200 requests in 200 ms: %v, want exactly one RATE kiss", got)
	}
	g = testGate(t, "ratelimit interval 3 burst 8 leak 2\n")
	if got := admitN(g, "198.51.100.9", ntp.AuthNone, 200); got[ntp.ActionKoD] != 0 {
		t.Errorf("ratelimit without kod: %v, want no kiss", got)
	}
}

// nopeer travels with every admission, so that the responder refuses
// symmetric-active requests under the seed's default line and answers them
// from networks whose rule lacks it.
func TestGateNoPeer(t *testing.T) {
	g := testGate(t, "restrict default kod nomodify notrap nopeer noquery\nrestrict 127.0.0.1\n")
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	if adm := g.Admit(netip.MustParseAddr("198.51.100.9"), now, ntp.AuthNone); !adm.NoPeer {
		t.Errorf("default rule: %+v, want NoPeer", adm)
	}
	if adm := g.Admit(netip.MustParseAddr("127.0.0.1"), now, ntp.AuthNone); adm.NoPeer {
		t.Errorf("127.0.0.1: %+v, want peers answered", adm)
	}
}
