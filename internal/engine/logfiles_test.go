package engine

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"timegate/internal/config"
	"timegate/ntp"
	"timegate/symkey"
)

// logLines returns a log file's data lines (banners skipped) and how many banners it has.
func logLines(t *testing.T, path string) (lines [][]string, banners int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "====="):
		case strings.HasPrefix(l, "   Date (UTC)"):
			banners++
		default:
			lines = append(lines, strings.Fields(l))
		}
	}
	return lines, banners
}

// The three chrony logs get one line per sample, per filter update and per clock update,
// with chrony's banner and its number of columns; a log renamed away is started anew.
func TestEngineLogFiles(t *testing.T) {
	r := seeded(t)
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		net := newFakeNet()
		k := newKey(t, 1, symkey.AES128CMAC, r)
		net.add("10.0.0.1:123", keyedServer(k, 1, 20*time.Millisecond))
		set, err := symkey.NewSet(k)
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Sources: []config.Source{server("10.0.0.1", 123, "key 1")}, Keys: set, Rand: r, MinSources: 1,
			LogDir: dir, Logs: config.LogFiles{Measurements: true, Statistics: true, Tracking: true}}
		var state atomic.Pointer[ntp.ServedState]
		e, _, warn := testEngine(t, opts, net, &state)
		if len(warn) != 0 {
			t.Fatalf("warnings %v", warn)
		}
		runFor(t, e, time.Minute)
		meas, b1 := logLines(t, filepath.Join(dir, "measurements.log"))
		stats, b2 := logLines(t, filepath.Join(dir, "statistics.log"))
		track, b3 := logLines(t, filepath.Join(dir, "tracking.log"))
		// iburst: 8 polls 2 s apart, then 16 s polls: 10 or 11 replies in a minute.
		if len(meas) < 9 || len(meas) > 12 || len(stats) != len(meas) || b1 != 1 || b2 != 1 || b3 != 1 {
			t.Fatalf("%d measurements, %d statistics lines; banners %d %d %d", len(meas), len(stats), b1, b2, b3)
		}
		if len(track) == 0 || len(track) > len(meas) {
			t.Fatalf("%d tracking lines for %d samples", len(track), len(meas))
		}
		for name, c := range map[string]struct {
			row  []string
			cols int
		}{"measurements": {meas[0], 20}, "statistics": {stats[0], 13}, "tracking": {track[0], 14}} {
			if len(c.row) != c.cols || c.row[2] != "10.0.0.1" {
				t.Errorf("%s line %q: want %d columns naming the source", name, c.row, c.cols)
			}
		}
		if m := meas[0]; m[3] != "N" || m[4] != "1" || m[5] != "111" || m[16] != "47505300" {
			t.Errorf("measurements line %q", m)
		}
		// Offsets are against the served clock, as chrony's are against its
		// own: the server's 20 ms before the first estimate, nothing once
		// the clock has stepped to it.
		col := func(row []string, i int) float64 {
			v, err := strconv.ParseFloat(row[i], 64)
			if err != nil {
				t.Fatalf("column %d of %q: %v", i, row, err)
			}
			return v
		}
		if first, last := col(meas[0], 11), col(meas[len(meas)-1], 11); math.Abs(first-0.020) > 1e-4 || math.Abs(last) > 1e-5 {
			t.Errorf("measurement offsets %v first, %v last: want 0.020 and 0", first, last)
		}
		if last := col(stats[len(stats)-1], 4); math.Abs(last) > 1e-5 {
			t.Errorf("the filter's last offset %v against the served clock, want 0", last)
		}
		// logrotate renames the file away: the next run (or line) starts a new one.
		if err := os.Rename(filepath.Join(dir, "tracking.log"), filepath.Join(dir, "tracking.log.1")); err != nil {
			t.Fatal(err)
		}
		e, _, _ = testEngine(t, opts, net, &state)
		runFor(t, e, 20*time.Second)
		if _, b := logLines(t, filepath.Join(dir, "tracking.log")); b != 1 {
			t.Errorf("new tracking.log has %d banners", b)
		}
	})
}
