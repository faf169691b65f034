package tests

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"timegate/tests/harness"
)

// startLocalTimegate runs timegate serving its local clock at stratum on a
// free loopback port, with rate limiting relaxed for sub-second polling.
func startLocalTimegate(t *testing.T, stratum int, extra ...string) (*harness.Process, int) {
	t.Helper()
	bins := build.Binaries(t)
	port := harness.FreeUDPPort(t)
	rest := strings.Join(extra, "\n")
	if !strings.Contains(rest, "ratelimit") {
		rest += "\nratelimit interval -6 burst 32 leak 2"
	}
	conf := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nbindaddress ::1\nlocal stratum %d\n%s\n", port, stratum, rest)
	p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", t.TempDir()}})
	return p, port
}

// Issue 2: the real chronyd uses timegate as its server and reaches it, at the
// stratum timegate serves.
func TestChronyUsesTimegate(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	_, port := startLocalTimegate(t, 7)
	c := harness.StartChrony(t, harness.ChronyOptions{
		Name:    "chrony-client",
		Servers: []harness.ServerLine{{Port: port}},
	})
	src := c.WaitSelected(t, "127.0.0.1", 30*time.Second)
	if src.Stratum != 7 || src.Reach == 0 {
		t.Fatalf("chrony sees timegate as %+v, want stratum 7 and reachable", src)
	}
	nd := c.NTPData(t, "127.0.0.1")
	if nd["Stratum"] != "7" || nd["Mode"] != "Server" || nd["Leap status"] != "Normal" {
		t.Errorf("ntpdata: %v", nd)
	}
	if tr := c.Tracking(t); tr.Stratum != 8 {
		t.Errorf("chrony tracking stratum %d, want 8 (timegate's 7 + 1)", tr.Stratum)
	}
}

// Issue 2: an unsynchronised timegate is reachable but never selected.
func TestChronyRejectsUnsynchronisedTimegate(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	bins := build.Binaries(t)
	port := harness.FreeUDPPort(t)
	conf := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nratelimit off\n", port)
	harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", t.TempDir()}})
	c := harness.StartChrony(t, harness.ChronyOptions{Servers: []harness.ServerLine{{Port: port}}})
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		nd, err := c.TryNTPData("127.0.0.1")
		if err != nil {
			return false, err.Error()
		}
		return nd["Leap status"] == "Not synchronised" && nd["Stratum"] == "16", fmt.Sprint(nd)
	})
	for range 10 {
		for _, s := range c.Sources(t) {
			if s.Selected() {
				t.Fatalf("chrony selected an unsynchronised timegate: %+v", s)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Issue 2: gatectl query agrees with timegate to within 10 ms on loopback.
func TestGatectlQueryAgrees(t *testing.T) {
	bins := build.Binaries(t)
	_, port := startLocalTimegate(t, 4)
	for _, host := range []string{"127.0.0.1", "::1"} {
		out, stderr, err := harness.RunGatectl(t, bins.Gatectl, "query", "-json", "-port", strconv.Itoa(port), host)
		if err != nil {
			t.Fatalf("gatectl query %s: %v\n%s", host, err, stderr)
		}
		var r struct {
			Offset   float64 `json:"offset_s"`
			Delay    float64 `json:"delay_s"`
			Stratum  int     `json:"stratum"`
			Leap     int     `json:"leap"`
			RefID    string  `json:"refid"`
			Distance float64 `json:"root_distance_s"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if r.Stratum != 4 || r.Leap != 0 || r.RefID != "127.127.1.1" {
			t.Errorf("%s: %+v", host, r)
		}
		// Server and client read the same clock, so the true offset is 0 and
		// a correct measurement lies within half its round trip (RFC 5905
		// §8), however slow a busy machine makes that trip (plus 1 µs of
		// timestamp rounding).
		if r.Delay < 0 || r.Distance <= 0 || math.Abs(r.Offset) > r.Delay/2+1e-6 {
			t.Errorf("%s: offset %v outside ± delay/2 (delay %v), distance %v", host, r.Offset, r.Delay, r.Distance)
		}
	}
}
