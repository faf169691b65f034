package gateway

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"timegate/certs"
	"timegate/internal/config"
)

func TestCertificateExpiryWarnings(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	s := &ntsService{log: zap.New(core)}
	for _, c := range []struct {
		days  int
		level zapcore.Level
		n     int
	}{{90, 0, 0}, {20, zapcore.WarnLevel, 1}, {3, zapcore.ErrorLevel, 1}, {-1, zapcore.ErrorLevel, 1}} {
		logs.TakeAll()
		s.logExpiry(certs.Info{DaysToExpiry: c.days, NotAfter: time.Now().Add(time.Duration(c.days) * 24 * time.Hour)})
		got := logs.TakeAll()
		if len(got) != c.n || (c.n == 1 && got[0].Level != c.level) {
			t.Errorf("%d days: %d entries %v", c.days, len(got), got)
		}
	}
}

// Campaign finding: ntsratelimit's leak let one address complete 102
// NTS-KE handshakes in 5 s. Over TCP nothing leaks: after the burst, a
// flooding source gets nothing until its budget refills.
func TestKERateLimitNoLeak(t *testing.T) {
	cfg, err := config.Parse("ke.conf", []byte("ntsratelimit interval 6 burst 4 leak 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := keRateConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var s ntsService
	if err := s.keRate.Set(rc); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	passed := 0
	for i := range 1000 {
		if s.allowKE(a, now.Add(time.Duration(i)*time.Millisecond)) {
			passed++
		}
	}
	if passed != 4 {
		t.Fatalf("%d of 1000 connections in 1 s passed; want the burst of 4 and no leak", passed)
	}
}

// TestKERateLimitReloads: a reload puts a changed ntsratelimit in force in
// the NTS-KE listener of this process (ntsprocesses 0), keeps the table
// when the settings are unchanged, turns it off with `off`, and warns of
// nothing; a bad one refuses the reload whole.
func TestKERateLimitReloads(t *testing.T) {
	dir := t.TempDir()
	base := fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nlocal stratum 5\nntsprocesses 0\n",
		freePort(t, "udp"), freePort(t, "tcp"))
	g, confPath := gatewayFromText(t, dir, base+"ntsratelimit interval 6 burst 4 leak 1\n")
	t.Cleanup(g.closeAll)
	// burst is the table's burst, -1 without a table (printing a table
	// would print every bucket).
	burst := func() int {
		if tb := g.nts.keRate.Table(); tb != nil {
			return tb.Config().Burst
		}
		return -1
	}
	if b := burst(); b != 4 {
		t.Fatalf("at start: burst %d", b)
	}
	reload := func(line string) {
		t.Helper()
		os.WriteFile(confPath, []byte(base+line), 0o600)
		warnings, err := g.reload()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		for _, w := range warnings {
			if strings.Contains(w, "ntsratelimit") {
				t.Errorf("%q: reload warned: %s", line, w)
			}
		}
	}
	reload("ntsratelimit interval 6 burst 8 leak 1\n")
	first := g.nts.keRate.Table()
	if b := burst(); b != 8 {
		t.Fatalf("after reload: burst %d", b)
	}
	reload("ntsratelimit interval 6 burst 8 leak 1\n")
	if g.nts.keRate.Table() != first {
		t.Error("an unchanged ntsratelimit started a new table")
	}
	os.WriteFile(confPath, []byte(base+"ntsratelimit interval 6 burst 0\n"), 0o600)
	if _, err := g.reload(); err == nil || g.nts.keRate.Table() != first {
		t.Errorf("bad ntsratelimit: reload error %v, table replaced %v", err, g.nts.keRate.Table() != first)
	}
	reload("ntsratelimit off\n")
	if b := burst(); b != -1 {
		t.Errorf("ntsratelimit off: a table with burst %d", b)
	}
}
