package tests

import (
	"testing"
	"time"

	"timegate/tests/harness"
)

// Issue 13 item 7: a symmetric-active client (chronyd's `peer` line polls in
// mode 1, as w32time does without the 0x8 flag) is answered statelessly in
// mode 2 where the matching restrict rule lacks nopeer, and chronyd then
// selects timegate; under the seed's default line (nopeer) it gets nothing.
func TestSymmetricActivePeer(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	for _, tc := range []struct {
		name     string
		restrict string
		answered bool
	}{
		{"no nopeer", "restrict default kod nomodify notrap noquery", true},
		{"nopeer", "restrict default kod nomodify notrap nopeer noquery", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, port := startLocalTimegate(t, 7, tc.restrict)
			line := harness.ServerLine{Port: port}.String()
			// chronyd sends peer packets from its NTP server socket, so it
			// needs one (a free port; it serves no one else here).
			c := harness.StartChrony(t, harness.ChronyOptions{
				Name:        "chrony-peer",
				Serve:       true,
				ExtraConfig: []string{"peer" + line[len("server"):]},
			})
			if tc.answered {
				src := c.WaitSelected(t, "127.0.0.1", 30*time.Second)
				if src.Mode != "=" || src.Stratum != 7 {
					t.Errorf("chrony sees timegate as %+v, want a peer (=) at stratum 7", src)
				}
				return
			}
			time.Sleep(3 * time.Second)
			nd := c.NTPData(t, "127.0.0.1")
			if nd["Total valid RX"] != "0" || nd["Total TX"] == "0" || nd["Total TX"] == "" {
				t.Errorf("nopeer: chrony sent %q requests and received %q valid replies, want some and none: %v",
					nd["Total TX"], nd["Total valid RX"], nd)
			}
		})
	}
}
