package tests

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"timegate/leap"
	"timegate/tests/harness"
)

// Issue 14: a leap second inserted, then one deleted, on the served clock, seen by a real
// chronyd client. The system clock is never touched: two chained chronyds
// (an honest one on 127.0.0.2, a second one following it with `offset X`,
// both -x) serve true time + X, chosen so that the gateway's served time
// reaches a UTC midnight about 45 s after the chain starts; the gateway's
// leapfile (written for the test, with its SHA-1 hash) lists a leap at that
// midnight. chronyd 4.3's own leap decision follows its system clock's date
// (is_leap_second_day on raw time), so its `tracking` leap status cannot
// show the gateway's leap on an ordinary day; `ntpdata` shows the leap
// indicator chronyd received from the gateway, which is what this checks,
// with the served time itself before and after the leap, on the NTP port
// and on the smoothing port. (chronyd -x cannot step its null clock driver,
// so no makestep: it takes any correction at once instead.)
func TestLeapSecondServedToChrony(t *testing.T) {
	t.Run("insert", func(t *testing.T) { leapServedToChrony(t, 1) })
	t.Run("delete", func(t *testing.T) { leapServedToChrony(t, -1) })
}

// leapServedToChrony runs the chain for an inserted (sec 1) or deleted
// (sec −1) second.
func leapServedToChrony(t *testing.T, sec int) {
	const lead = 45 * time.Second
	honest := harness.StartChrony(t, harness.ChronyOptions{Name: "honest", LocalStratum: 9,
		ExtraConfig: []string{"bindaddress 127.0.0.2"}})
	target := time.Now().Add(lead)
	midnight := target.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	shift := midnight.Sub(target).Seconds() // served time = system time + shift
	shifted := harness.StartChrony(t, harness.ChronyOptions{Name: "shifted", Serve: true,
		Servers: []harness.ServerLine{{Host: "127.0.0.2", Port: honest.Port, Options: []string{"offset", fmt.Sprintf("%.6f", shift)}}}})

	dir := t.TempDir()
	tb := &leap.Table{Updated: midnight.Add(-30 * 24 * time.Hour), Expires: midnight.Add(150 * 24 * time.Hour),
		Entries: []leap.Entry{{At: time.Date(1972, 1, 1, 0, 0, 0, 0, time.UTC), TAI: 10}, {At: midnight, TAI: 10 + sec}}}
	list := filepath.Join(dir, "leap-seconds.list")
	if err := os.WriteFile(list, leap.FormatList(tb), 0o644); err != nil {
		t.Fatal(err)
	}
	smoothPort := harness.FreeUDPPort(t)
	tg, port := upstreamTimegate(t, fastServer(shifted.Port), "authselectmode ignore", "minsources 1",
		"maxchange 100000 0 -1", "leapfile "+list,
		"smoothtime 400 0.001 leaponly", "smoothport "+strconv.Itoa(smoothPort), "smoothallow 127.0.0.0/8")
	tg.WaitLog(t, 0, syncedLine, 30*time.Second)
	tg.WaitLog(t, 0, "leap second announced", 10*time.Second)

	servedNow := func() time.Time { return time.Now().Add(time.Duration(shift * float64(time.Second))) }
	at, li, words := midnight, 1, "Insert second" // when served time takes the second, and how it is announced
	if sec < 0 {
		at, li, words = midnight.Add(-time.Second), 2, "Delete second"
	}
	var r queryResult
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		r = gatectlQuery(t, port)
		return r.Leap == li && math.Abs(r.Offset-shift) < 0.05, fmt.Sprintf("%+v, want leap %d and offset %.3f", r, li, shift)
	})
	if s := gatectlQuery(t, smoothPort); s.Leap != 0 || math.Abs(s.Offset-shift) > 0.05 {
		t.Errorf("smoothing port before the leap: %+v (want leap 0, offset %.3f)", s, shift)
	}

	client := harness.StartChrony(t, harness.ChronyOptions{Name: "client",
		Servers: []harness.ServerLine{{Port: port}}})
	client.WaitSelected(t, "127.0.0.1", 30*time.Second)
	if d := client.NTPData(t, "127.0.0.1"); d["Leap status"] != words {
		t.Errorf("chronyd received leap status %q from the gateway before the leap, want %s", d["Leap status"], words)
	}
	t.Logf("chronyd's own leap status before the leap: %q (its date is the system clock's)", client.Tracking(t).Leap)
	if left := at.Sub(servedNow()); left < 3*time.Second {
		t.Fatalf("the chain took too long: served time is %v from the leap already", left)
	}

	// Three seconds after the leap, before any sample taken after it is used
	// (samples within 5 s of it are dropped): served time took exactly the
	// second, the smoothed time has hardly started to.
	time.Sleep(time.Until(at.Add(-time.Duration(shift * float64(time.Second))).Add(3 * time.Second)))
	after := shift - float64(sec)
	r = gatectlQuery(t, port)
	if r.Leap != 0 || math.Abs(r.Offset-after) > 0.05 {
		t.Errorf("after the leap: %+v, want leap 0 and offset %.3f", r, after)
	}
	s := gatectlQuery(t, smoothPort)
	if s.Leap != 0 || math.Abs(s.Offset-shift) > 0.05 || s.RefID != "127.127.1.255" {
		t.Errorf("smoothing port after the leap: %+v, want leap 0, offset %.3f and refid 127.127.1.255", s, shift)
	}
	tg.WaitLog(t, 0, "served clock takes the leap second", time.Second)
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		d := client.NTPData(t, "127.0.0.1")
		return d["Leap status"] == "Normal", "chronyd still receives leap status " + d["Leap status"]
	})
	// chronyd's clock (the -x null driver's correction) follows the served
	// time across the leap.
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		tr := client.Tracking(t)
		return math.Abs(tr.SystemTime-after) < 0.05, fmt.Sprintf("chronyd's correction %.6f s, want %.6f", tr.SystemTime, after)
	})
}

// Issue 14 item 4: when its upstream goes away, a gateway with `local
// stratum 8` holds over, then serves its local clock (refid 127.127.1.1) to
// a real chronyd client, with a root dispersion that continues the bound it
// served while synchronised instead of a fixed figure.
func TestLocalFallbackAfterHoldover(t *testing.T) {
	up := harness.StartChrony(t, harness.ChronyOptions{Name: "upstream", LocalStratum: 3})
	tg, port := upstreamTimegate(t, fastServer(up.Port), "authselectmode ignore", "minsources 1",
		"local stratum 8 distance 1", "holdover 2")
	waitServing(t, tg, port, 4)
	client := harness.StartChrony(t, harness.ChronyOptions{Name: "client", Servers: []harness.ServerLine{{Port: port}}})
	client.WaitSelected(t, "127.0.0.1", 30*time.Second)
	// The bound served just before the upstream goes, not the first one under 0.1 s:
	// that one may still carry the filling clock filter's dummy stages (16 s / 2^8).
	synced := gatectlQuery(t, port)
	from := tg.LogSize()
	if err := up.Stop(); err != nil {
		t.Fatal(err)
	}
	tg.WaitLog(t, from, "holding over", 30*time.Second)
	tg.WaitLog(t, from, "unsynchronised: serving the local clock", 30*time.Second)
	r := gatectlQuery(t, port)
	if r.Stratum != 8 || r.RefID != "127.127.1.1" || r.Leap != 0 {
		t.Fatalf("local clock served as %+v", r)
	}
	// It continues the holdover's bound, which grows by PHI plus the
	// frequency's uncertainty (500 ppm on a cold start, until a frequency is
	// fitted): at least what was served synchronised, never the fixed 10 ms
	// of a gateway that was never synchronised.
	// Compared as served (root delay/2 + root dispersion): each query's
	// own delay, milliseconds on a loaded machine, is not the gateway's.
	if r.served() < synced.served() || math.Abs(r.served()-0.01) < 0.0002 {
		t.Errorf("local root distance %v: want it to continue the synchronised %v (not the never-synchronised 10 ms)", r.served(), synced.served())
	}
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		src, ok := harness.FindSource(client.Sources(t), "127.0.0.1")
		return ok && src.Stratum == 8, fmt.Sprintf("chronyd sees %+v", src)
	})
}
