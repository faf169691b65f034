package gateway

import (
	"net/netip"
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
	allow, _, err := keRateLimit(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	passed := 0
	for i := range 1000 {
		if allow(a, now.Add(time.Duration(i)*time.Millisecond)) {
			passed++
		}
	}
	if passed != 4 {
		t.Fatalf("%d of 1000 connections in 1 s passed; want the burst of 4 and no leak", passed)
	}
}
