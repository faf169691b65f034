package tests

import (
	"fmt"
	"testing"
	"time"

	"timegate/tests/harness"
)

// Issue 13 item 5: replies leave from the address the request was sent
// to. timegate listens on every address (no bindaddress: one dual-stack
// wildcard group of sockets); a chronyd client asking 127.0.0.3 from
// 127.0.0.5 (bindacqaddress) and one asking ::1 must both select it.
// chronyd connects its client sockets to the server's address, so the
// kernel hands it only replies whose source is exactly that address: a
// reply from the kernel's default choice (127.0.0.1) never reaches it and
// the source would stay unreachable.
func TestChronyAnsweredFromAddressAsked(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	bins := build.Binaries(t)
	port := harness.FreeUDPPort(t)
	conf := fmt.Sprintf("port %d\nntsport 0\nntpworkers 2\nlocal stratum 6\nratelimit interval -6 burst 32 leak 2\n", port)
	harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", t.TempDir()}})
	for _, tc := range []struct {
		name, server string
		extra        []string
	}{
		{"secondary IPv4", "127.0.0.3", []string{"bindacqaddress 127.0.0.5"}},
		{"IPv6 loopback", "::1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := harness.StartChrony(t, harness.ChronyOptions{
				Name:        "chrony-" + tc.server,
				Servers:     []harness.ServerLine{{Host: tc.server, Port: port}},
				ExtraConfig: tc.extra,
			})
			src := c.WaitSelected(t, tc.server, 30*time.Second)
			if src.Stratum != 6 {
				t.Errorf("chrony sees %s as %+v, want stratum 6", tc.server, src)
			}
		})
	}
}
