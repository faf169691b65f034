package gateway

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"timegate/certs"
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
