package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"timegate/tests/harness"
)

// Issue 14 part 2: the real chronyd 4.3 with `xleave` gets interleaved
// replies from timegate (chrony's ntpdata says "Interleaved : Yes"), over
// plain NTP, a symmetric key and NTS alike, and stays selected.
func TestChronyInterleavedClient(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	cases := []struct {
		name  string
		start func(t *testing.T) (*harness.Process, harness.ChronyOptions)
	}{
		{"plain", func(t *testing.T) (*harness.Process, harness.ChronyOptions) {
			p, port := startLocalTimegate(t, 6)
			return p, harness.ChronyOptions{Servers: []harness.ServerLine{{Port: port, Options: []string{"xleave"}}}}
		}},
		{"key", func(t *testing.T) (*harness.Process, harness.ChronyOptions) {
			keys := harness.WriteKeys(t, t.TempDir(), harness.NewKey(t, 12, "AES128"))
			p, port := startLocalTimegate(t, 6, "keyfile "+keys)
			return p, harness.ChronyOptions{Servers: []harness.ServerLine{{Port: port, Key: 12, Options: []string{"xleave"}}}, KeyFile: keys}
		}},
		{"nts", func(t *testing.T) (*harness.Process, harness.ChronyOptions) {
			p, ntpPort, kePort, cert := ntsTimegate(t, 6)
			return p, harness.ChronyOptions{
				Servers:     []harness.ServerLine{{Port: ntpPort, NTS: true, NTSPort: kePort, Options: []string{"xleave"}}},
				TrustedCert: cert,
			}
		}},
	}
	bins := build.Binaries(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, o := tc.start(t)
			o.Name = "chrony-xleave-" + tc.name
			c := harness.StartChrony(t, o)
			c.WaitSelected(t, "127.0.0.1", 30*time.Second)
			var nd map[string]string
			harness.WaitFor(t, 20*time.Second, func() (bool, string) {
				nd = c.NTPData(t, "127.0.0.1")
				return nd["Interleaved"] == "Yes", fmt.Sprintf("%v", nd)
			})
			if tc.name != "plain" && nd["Authenticated"] != "Yes" {
				t.Errorf("ntpdata: interleaved but not authenticated: %v", nd)
			}
			// Interleaved replies keep coming: a few more polls later it
			// still says Yes, and the source stays selected.
			rx := ntpRx(t, c)
			harness.WaitFor(t, 10*time.Second, func() (bool, string) {
				return ntpRx(t, c) >= rx+5, "waiting for more replies"
			})
			if nd := c.NTPData(t, "127.0.0.1"); nd["Interleaved"] != "Yes" {
				t.Errorf("later: %v", nd)
			}
			if src, _ := harness.FindSource(c.Sources(t), "127.0.0.1"); !src.Selected() {
				t.Errorf("source not selected: %+v", src)
			}
			// timegate's side: interleaved replies counted, carrying the
			// kernel's transmit times, from a table that holds a few entries.
			out, _, err := p.Gatectl(t, bins.Gatectl, "serverstats", "-json")
			var st struct {
				NTP struct {
					Interleaved uint64 `json:"interleaved"`
					TxStamps    uint64 `json:"kernel_tx_stamps"`
					Held        int    `json:"timestamps_held"`
					Capacity    int    `json:"timestamps_capacity"`
				} `json:"ntp"`
			}
			if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.NTP.Interleaved < 5 || st.NTP.TxStamps < st.NTP.Interleaved ||
				st.NTP.Held == 0 || st.NTP.Held > st.NTP.Capacity {
				t.Errorf("serverstats: %v %+v\n%s", err, st.NTP, out)
			}
		})
	}
}

// Without xleave chronyd's requests are never answered interleaved.
func TestChronyBasicClientNotInterleaved(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	_, port := startLocalTimegate(t, 6)
	c := harness.StartChrony(t, harness.ChronyOptions{Servers: []harness.ServerLine{{Port: port}}})
	c.WaitSelected(t, "127.0.0.1", 30*time.Second)
	rx := ntpRx(t, c)
	harness.WaitFor(t, 10*time.Second, func() (bool, string) { return ntpRx(t, c) >= rx+5, "waiting for replies" })
	if nd := c.NTPData(t, "127.0.0.1"); nd["Interleaved"] != "No" {
		t.Errorf("ntpdata: %v", nd)
	}
}

// Issue 14 part 2, client side: timegate with `xleave` towards a real
// chronyd 4.3 upstream (keyed) uses interleaved mode: `gatectl sources`
// says so, chronyd counts the interleaved replies it sent, and the served
// time is right. The same upstream without xleave stays basic.
func TestUpstreamChronyInterleaved(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	bins := build.Binaries(t)
	for _, xl := range []bool{true, false} {
		t.Run(fmt.Sprintf("xleave=%v", xl), func(t *testing.T) {
			keys := harness.WriteKeys(t, t.TempDir(), harness.NewKey(t, 10, "AES128"))
			up := harness.StartChrony(t, harness.ChronyOptions{Name: "upstream", LocalStratum: 5, KeyFile: keys})
			opts := "key 10"
			if xl {
				opts += " xleave"
			}
			logDir := t.TempDir()
			tg, port := upstreamTimegate(t, "keyfile "+keys, "minsources 1", "logdir "+logDir, "log measurements", fastServer(up.Port, opts))
			checkHonest(t, waitServing(t, tg, port, 6))
			var src struct {
				Mode        string `json:"mode"`
				Interleaved bool   `json:"interleaved"`
				XLeave      bool   `json:"xleave"`
				Received    uint64 `json:"received"`
			}
			harness.WaitFor(t, 20*time.Second, func() (bool, string) {
				out, _, err := tg.Gatectl(t, bins.Gatectl, "sources", "-json")
				var rows []json.RawMessage
				if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 {
					return false, fmt.Sprintf("%v: %s", err, out)
				}
				json.Unmarshal(rows[0], &src)
				return src.Received >= 10 && src.Interleaved == xl, out
			})
			if src.XLeave != xl || (xl && src.Mode != "interleaved") || (!xl && src.Mode != "basic") {
				t.Errorf("gatectl sources: %+v", src)
			}
			out, _, _ := tg.Gatectl(t, bins.Gatectl, "sources")
			mode := "  basic  "
			if xl {
				mode = "  interleaved  "
			}
			if !strings.Contains(out, mode) {
				t.Errorf("gatectl sources table:\n%s", out)
			}
			st := up.ServerStats(t)
			if xl && st.InterleavedPkts == 0 || !xl && st.InterleavedPkts != 0 {
				t.Errorf("chronyd sent %d interleaved replies (xleave %v)", st.InterleavedPkts, xl)
			}
			checkHonest(t, gatectlQuery(t, port))
			// measurements.log, in chrony's MTxRx column: the mode, and
			// kernel stamps for both the request's transmit time (the
			// error queue) and the reply's receive time.
			data, err := os.ReadFile(filepath.Join(logDir, "measurements.log"))
			want := " 4B K K\n"
			if xl {
				want = " 4I K K\n"
			}
			if err != nil || !strings.Contains(string(data), want) {
				t.Errorf("measurements.log has no %q line: %v\n%s", strings.TrimSpace(want), err, data)
			}
		})
	}
}
