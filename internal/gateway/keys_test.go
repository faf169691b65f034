package gateway

import (
	"testing"

	"timegate/internal/config"
)

// What an NTS-KE reply announces: this host's own NTP port by default, the
// NTP hosts' port with `ntsntpserver HOST port N`, none (so 123) from a KE
// front end without NTP of its own and no port named.
func TestNegotiateOptionsPort(t *testing.T) {
	for _, c := range []struct {
		port, ntsNTPPort int
		want             uint16
	}{{1123, 0, 1123}, {1123, 123, 123}, {0, 0, 0}, {0, 4123, 4123}} {
		cfg := &config.Config{Port: c.port, NTSNTPPort: c.ntsNTPPort, NTSNTPServer: "ntp1.example.net"}
		o := negotiateOptions(cfg)
		if o.NTPPort != c.want || o.NTPServer != "ntp1.example.net" {
			t.Errorf("port %d, ntsntpserver port %d: announces %q port %d, want %d", c.port, c.ntsNTPPort, o.NTPServer, o.NTPPort, c.want)
		}
		if err := o.Validate(); err != nil {
			t.Error(err)
		}
	}
}
