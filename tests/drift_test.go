package tests

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"timegate/tests/harness"
)

// Issue 13 item 2 (driftfile, dumpdir): a gateway with driftfile and dumpdir restarted
// mid-run serves within its previous error bound at once — its served offset and, the
// source's filter being restored from dumpdir, its root distance — runs on the saved
// frequency with the saved (small) uncertainty instead of the cold start's 500 ppm, and
// so claims a smaller root dispersion than it did after its cold start.
func TestDriftFileAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	keys := harness.WriteKeys(t, dir, harness.NewKey(t, 10, "AES128"))
	up := harness.StartChrony(t, harness.ChronyOptions{Name: "upstream", LocalStratum: 5, KeyFile: keys})
	driftPath := filepath.Join(dir, "timegate.drift")
	// 8 s polls: on a noisy path the fit needs estimates 60 s apart (on loopback it
	// fits a slope within seconds), and keeps the latest sixteen.
	line := fmt.Sprintf("server 127.0.0.1 port %d key 10 iburst minpoll 3 maxpoll 3", up.Port)
	logDir := filepath.Join(dir, "log")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tg, port := upstreamTimegate(t, "keyfile "+keys, "minsources 1", "driftfile "+driftPath,
		"dumpdir "+filepath.Join(dir, "dump"), "logdir "+logDir, "log measurements statistics tracking", line)
	ctl := func() statusJSON { return gatectlStatus(t, tg) }

	tg.WaitLog(t, 0, syncedLine, 30*time.Second)
	// At the first synchronisation the fit has one estimate and no slope.
	coldAtSync := ctl()
	if coldAtSync.SkewPPM != 500 {
		t.Errorf("cold start: skew %v ppm at the first synchronisation, want the 500 ppm bound", coldAtSync.SkewPPM)
	}
	// The first fitted frequency is saved at once.
	harness.WaitFor(t, 150*time.Second, func() (bool, string) {
		_, err := os.Stat(driftPath)
		return err == nil, fmt.Sprintf("no drift file: %v", err)
	})
	before := ctl()
	bound := before.RootDistance
	t.Logf("before the restart: %+v", before)

	from := tg.LogSize()
	stopAt := time.Now()
	tg.Restart(t)
	data, err := os.ReadFile(driftPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drift file after the clean stop:\n%s", data)
	fields := strings.Fields(strings.Split(strings.TrimSpace(string(data)), "\n")[1])
	var savedFreq, savedSkew float64
	if _, err := fmt.Sscan(fields[0]+" "+fields[1], &savedFreq, &savedSkew); err != nil {
		t.Fatal(err)
	}
	tg.WaitLog(t, from, "frequency restored from the drift file", 10*time.Second)
	tg.WaitLog(t, from, "source state restored from dumpdir", 10*time.Second)
	tg.WaitLog(t, from, syncedLine, 30*time.Second)
	q := gatectlQuery(t, port)
	st := ctl()
	t.Logf("first synchronisation after the restart: query %+v, status %+v", q, st)
	// The bound grows by PHI per second from the estimate it rests on, as it would have
	// had the process run on: over the downtime and the poll interval (8 s) between.
	grown := bound + 15e-6*(time.Since(stopAt).Seconds()+8)
	if st.RootDistance > grown {
		t.Errorf("root distance %v s at the first synchronisation after the restart, beyond the previous %v s (+PHI·(downtime+poll): %v s)",
			st.RootDistance, bound, grown)
	}
	if math.Abs(q.Offset) > bound {
		t.Errorf("served offset %v s after the restart, beyond the previous error bound %v s", q.Offset, bound)
	}
	if math.Abs(st.DriftPPM-savedFreq) > 1e-6 {
		t.Errorf("restored frequency %v ppm, saved %v ppm", st.DriftPPM, savedFreq)
	}
	if st.SkewPPM > 1 || st.SkewPPM < savedSkew {
		t.Errorf("restored skew %v ppm: want the saved %v ppm, aged by seconds", st.SkewPPM, savedSkew)
	}
	checkChronyLogs(t, logDir)
	t.Logf("at the first synchronisation: cold start %+v, restart %+v", coldAtSync, st)
	if st.RootDispersion >= coldAtSync.RootDispersion {
		t.Errorf("root dispersion at the first synchronisation after the restart %v s, not below the cold start's %v s",
			st.RootDispersion, coldAtSync.RootDispersion)
	}
}

type statusJSON struct {
	State          string  `json:"state"`
	DriftPPM       float64 `json:"drift_ppm"`
	SkewPPM        float64 `json:"skew_ppm"`
	RootDispersion float64 `json:"root_dispersion_s"`
	RootDistance   float64 `json:"root_distance_s"`
	SinceEstimate  float64 `json:"since_estimate_s"`
}

func gatectlStatus(t *testing.T, p *harness.Process) statusJSON {
	t.Helper()
	out, stderr, _ := p.Gatectl(t, build.Binaries(t).Gatectl, "status", "-json")
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("gatectl status -json: %v\n%s%s", err, out, stderr)
	}
	return st
}

// checkChronyLogs checks the log files timegate wrote across both runs: chrony's banner
// first, then lines with chrony's number of columns naming the upstream.
func checkChronyLogs(t *testing.T, dir string) {
	t.Helper()
	for name, cols := range map[string]int{"measurements": 20, "statistics": 13, "tracking": 14} {
		data, err := os.ReadFile(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Errorf("%s.log: %v", name, err)
			continue
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(lines) < 4 || !strings.HasPrefix(lines[0], "=====") || !strings.HasPrefix(lines[1], "   Date (UTC) Time") {
			t.Errorf("%s.log does not start with chrony's banner:\n%s", name, data)
			continue
		}
		rows := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "=") || strings.HasPrefix(l, "   Date") {
				continue
			}
			if f := strings.Fields(l); len(f) != cols || f[2] != "127.0.0.1" {
				t.Errorf("%s.log line %q: want %d columns naming 127.0.0.1", name, l, cols)
			}
			rows++
		}
		t.Logf("%s.log: %d lines; last: %s", name, rows, lines[len(lines)-1])
	}
}
