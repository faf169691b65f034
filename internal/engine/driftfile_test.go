package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/ntp"
	"timegate/upstream"
)

func driftEngine(t *testing.T, path string, now time.Time) (*Engine, []string) {
	t.Helper()
	e, warn, err := New(Options{
		DriftFile: path, Publish: func(*ntp.ServedState) {}, Log: zaptest.NewLogger(t),
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, warn
}

func writeDrift(t *testing.T, path string, d upstream.Drift, mode os.FileMode) {
	t.Helper()
	b, _ := d.AppendText(nil)
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestDriftFileRestored(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "timegate.drift")
	saved := upstream.Drift{Freq: -7.5e-6, Skew: 0.02e-6, At: now.Add(-time.Minute)}
	writeDrift(t, path, saved, 0o644)
	e, warn := driftEngine(t, path, now)
	if len(warn) != 0 {
		t.Fatalf("warnings %v", warn)
	}
	if st := e.clock.Status(now); st.Frequency != saved.Freq {
		t.Fatalf("frequency %v, want the saved %v", st.Frequency, saved.Freq)
	}
	// Nothing new learnt: the stop does not rewrite the file.
	r := &runner{Engine: e}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r.saveDrift(now.Add(time.Minute), true)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Error("the file was rewritten although the clock learnt nothing")
	}
}

func TestDriftFileIgnored(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	good := upstream.Drift{Freq: 1e-6, Skew: 0.02e-6, At: now}
	for _, tc := range []struct {
		name, want string
		write      func(path string)
	}{
		{"chronyd's", "chronyd", func(p string) { os.WriteFile(p, []byte("  -1.5  0.2\n"), 0o644) }},
		{"writable by others", "mode 0666", func(p string) { writeDrift(t, p, good, 0o666) }},
		{"a week and a day old", "too old", func(p string) {
			writeDrift(t, p, upstream.Drift{Freq: 1e-6, Skew: 1e-8, At: now.Add(-8 * 24 * time.Hour)}, 0o644)
		}},
		{"a directory", "regular", func(p string) { os.Mkdir(p, 0o755) }},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		tc.write(path)
		e, warn := driftEngine(t, path, now)
		if len(warn) != 1 || !strings.Contains(warn[0], tc.want) || !strings.Contains(warn[0], "starting cold") {
			t.Errorf("%s: warnings %q, want one saying %q", tc.name, warn, tc.want)
		}
		if st := e.clock.Status(now); st.Frequency != 0 {
			t.Errorf("%s: frequency %v restored from an ignored file", tc.name, st.Frequency)
		}
	}
	if _, warn := driftEngine(t, filepath.Join(dir, "missing"), now); len(warn) != 0 {
		t.Errorf("a missing drift file (first start) warns %v", warn)
	}
}

// The first fitted frequency is saved at once, then not again within the hour, and the
// clean stop saves the latest.
func TestDriftFileSaved(t *testing.T) {
	t0 := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "drift")
	e, _ := driftEngine(t, path, t0)
	r := &runner{Engine: e}
	var at time.Time
	for i := range 20 {
		at = t0.Add(time.Duration(i) * 5 * time.Second)
		off := time.Duration(4e-6 * at.Sub(t0).Seconds() * float64(time.Second))
		est := upstream.Estimate{Time: at, Newest: at, Offset: off, Stratum: 1, Leap: upstream.LeapNone}
		if err := e.clock.Update(at, est); err != nil {
			t.Fatal(err)
		}
		r.saveDrift(at, false)
		if i == 12 {
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("no drift file once the frequency is fitted: %v", err)
			}
		}
	}
	first, _ := os.ReadFile(path)
	r.saveDrift(at, true)
	last, _ := os.ReadFile(path)
	if string(first) == string(last) {
		t.Error("the clean stop did not save the latest estimate")
	}
	d, err := upstream.ParseDrift(last)
	if err != nil || d.Freq < 3.9e-6 || d.Freq > 4.1e-6 || !d.At.Equal(at.Truncate(time.Second)) {
		t.Fatalf("saved %+v %v, want 4 ppm at %v", d, err, at)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
}
