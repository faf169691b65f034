package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestMetricsDirective(t *testing.T) {
	if c, err := Parse("c", nil); err != nil || c.Metrics.IsValid() {
		t.Fatalf("metrics must be off by default: %v %v", err, c.Metrics)
	}
	for in, want := range map[string]string{
		"127.0.0.1:9123": "127.0.0.1:9123",
		"[::1]:9123":     "[::1]:9123",
		"0.0.0.0:9100":   "0.0.0.0:9100",
	} {
		c, err := Parse("c", []byte("metrics "+in+"\n"))
		if err != nil || c.Metrics != netip.MustParseAddrPort(want) || c.Positions["metrics"].Line != 1 {
			t.Errorf("metrics %s: %v %v", in, err, c.Metrics)
		}
	}
	for _, tc := range []struct{ line, want string }{
		{"metrics :9123", `c:1: metrics: must be ADDR:PORT with an IP address`},
		{"metrics localhost:9123", `c:1: metrics: must be ADDR:PORT`},
		{"metrics 127.0.0.1", `c:1: metrics: must be ADDR:PORT`},
		{"metrics 127.0.0.1:0", `c:1: metrics: port must be 1..65535, got "127.0.0.1:0"`},
		{"metrics [fe80::1%eth0]:9123", `c:1: metrics: zoned addresses`},
		{"metrics", `c:1: metrics: takes 1 argument(s), got 0`},
		{"metrics 127.0.0.1:1\nmetrics 127.0.0.1:2", `c:2: metrics: already set at line 1`},
	} {
		_, err := Parse("c", []byte(tc.line+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.line, err, tc.want)
		}
	}
}
