package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"timegate/tests/harness"
)

// Issue 13 item 3: keys whose digest is longer than 160 bits, as chrony uses
// them: NTPv3 packets carrying the whole digest (an SHA256-keyed request is
// 48 + 4 + 32 = 84 octets), in both directions against the real chronyd 4.3.

// The real chronyd uses timegate as a keyed server with SHA256 and SHA512
// keys: it selects timegate and says the replies are authenticated; its
// requests are NTPv3, so timegate answered NTPv3 with the whole digest.
func TestChronyUsesTimegateSHAKeys(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	for _, typ := range []string{"SHA256", "SHA512"} {
		t.Run(typ, func(t *testing.T) {
			keys := harness.WriteKeys(t, t.TempDir(), harness.NewKey(t, 3, typ))
			_, port := startLocalTimegate(t, 7, "keyfile "+keys)
			c := harness.StartChrony(t, harness.ChronyOptions{
				Name:    "chrony-" + typ,
				Servers: []harness.ServerLine{{Port: port, Key: 3}},
				KeyFile: keys,
			})
			src := c.WaitSelected(t, "127.0.0.1", 30*time.Second)
			if src.Stratum != 7 {
				t.Errorf("chrony sees timegate at stratum %d, want 7", src.Stratum)
			}
			nd := c.NTPData(t, "127.0.0.1")
			if nd["Authenticated"] != "Yes" || nd["Version"] != "3" {
				t.Errorf("ntpdata: Authenticated %q Version %q, want Yes and 3 (full %s digest): %v",
					nd["Authenticated"], nd["Version"], typ, nd)
			}
		})
	}
}

// timegate uses the real chronyd as a keyed upstream with SHA256 and SHA512
// keys: it synchronises, and every request chronyd received was
// authenticated (chronyd counts a request with a bad or truncated MAC as
// unauthenticated and does not answer it).
func TestUpstreamChronySHAKeys(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	for _, typ := range []string{"SHA256", "SHA512"} {
		t.Run(typ, func(t *testing.T) {
			keys := harness.WriteKeys(t, t.TempDir(), harness.NewKey(t, 4, typ))
			up := harness.StartChrony(t, harness.ChronyOptions{Name: "upstream-" + typ, LocalStratum: 5, KeyFile: keys})
			tg, port := upstreamTimegate(t, "keyfile "+keys, "minsources 1", fastServer(up.Port, "key 4"))
			checkHonest(t, waitServing(t, tg, port, 6))
			if st := up.ServerStats(t); st.AuthNTPPackets == 0 || st.AuthNTPPackets != st.NTPPackets {
				t.Errorf("upstream saw %d NTP packets, %d authenticated", st.NTPPackets, st.AuthNTPPackets)
			}
		})
	}
}

// The ntp.keys NTPsec 1.2.2's ntpkeygen wrote, unchanged and with the mode it
// chose (0640), loads in the daemon: one timegate serves with it, another
// uses it to authenticate to the first with an ASCII key (1) and a hex key
// (11), and synchronises.
func TestNTPsecKeysFileUnchanged(t *testing.T) {
	data, err := os.ReadFile("../symkey/testdata/ntpsec-1.2.2-ntpkeygen.keys")
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "ntp.keys")
	if err := os.WriteFile(keys, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keys, 0o640); err != nil {
		t.Fatal(err)
	}
	_, srvPort := startLocalTimegate(t, 7, "keyfile "+keys)
	tg, port := upstreamTimegate(t, "keyfile "+keys, "minsources 2",
		fastServer(srvPort, "key 1"), strings.Replace(fastServer(srvPort, "key 11"), "127.0.0.1", "::1", 1))
	waitServing(t, tg, port, 8)
}
