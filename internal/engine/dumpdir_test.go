package engine

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"timegate/internal/config"
	"timegate/ntp"
	"timegate/symkey"
)

// runFor runs the engine for d of bubble time, then stops it cleanly.
func runFor(t *testing.T, e *Engine, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	time.Sleep(d)
	synctest.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// With dumpdir, a restarted engine is synchronised on the previous run's samples at its
// first selection round, even before (here: without) a reply; the file is read once and
// removed. Without the dump the same restart stays unsynchronised.
func TestEngineDumpDir(t *testing.T) {
	r := seeded(t)
	synctest.Test(t, func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "dump")
		net := newFakeNet()
		k := newKey(t, 1, symkey.AES128CMAC, r)
		srv := keyedServer(k, 1, 20*time.Millisecond)
		net.add("10.0.0.1:123", srv)
		set, err := symkey.NewSet(k)
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Sources: []config.Source{server("10.0.0.1", 123, "key 1")}, Keys: set, Rand: r, MinSources: 1, DumpDir: dir}
		var state atomic.Pointer[ntp.ServedState]
		e, _, _ := testEngine(t, opts, net, &state)
		runFor(t, e, time.Minute)
		if s := state.Load(); s.Stratum != 2 {
			t.Fatalf("first run: stratum %d", s.Stratum)
		}
		path := filepath.Join(dir, dumpName("10.0.0.1:123 key 1"))
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("dump file: %v %v, want mode 0600", fi, err)
		}

		srv.down.Store(true)
		e, logs, _ := testEngine(t, opts, net, &state)
		runFor(t, e, 3*time.Second) // the first poll goes unanswered, then a round
		if s := state.Load(); s.Stratum != 2 || s.Leap != ntp.LeapNone || s.RootDispersion > 50*time.Millisecond {
			t.Fatalf("restart with the dump: %+v, want synchronised at once", s)
		}
		if n := logs.FilterMessage("source state restored from dumpdir").Len(); n != 1 {
			t.Errorf("%d restore log lines", n)
		}
		// The clean stop wrote it anew; the read had removed it. A cold restart
		// (no dump) with the server still down stays unsynchronised.
		if err := os.Remove(path); err != nil {
			t.Fatalf("no dump after the second clean stop: %v", err)
		}
		e, _, _ = testEngine(t, opts, net, &state)
		runFor(t, e, 3*time.Second)
		if s := state.Load(); s.Stratum != 16 {
			t.Fatalf("restart without a dump: %+v, want unsynchronised", s)
		}
	})
}

// A dump file for another association, or a damaged one, is ignored with a warning.
func TestEngineDumpIgnored(t *testing.T) {
	r := seeded(t)
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		net := newFakeNet()
		opts := Options{Sources: []config.Source{server("10.0.0.1", 123)}, Rand: r, MinSources: 1,
			AuthSelectMode: "ignore", DumpDir: dir}
		path := filepath.Join(dir, dumpName("10.0.0.1:123 none"))
		if err := os.WriteFile(path, []byte("# timegate dump 1: one source's clock filter (chrony's dumpdir), unix ns\nsource 10.0.0.9:123 none\nsaved 0\nheader 1 0 0 0\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var state atomic.Pointer[ntp.ServedState]
		e, logs, _ := testEngine(t, opts, net, &state)
		runFor(t, e, 3*time.Second)
		if n := logs.FilterMessage("dump file ignored").Len(); n != 1 {
			t.Errorf("%d warnings for another source's dump, want 1", n)
		}
		if s := state.Load(); s.Stratum != 16 {
			t.Errorf("synchronised on another source's dump: %+v", s)
		}
	})
}
