package keystore

import (
	"context"
	"encoding/binary"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/internal/secfile"
	"timegate/nts"
)

func seeded(seed uint64) *mrand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return mrand.NewChaCha8(s)
}

func testCookie(b byte) nts.Cookie {
	c := nts.Cookie{AEAD: nts.AEADAESSIVCMAC256}
	c.C2S[0], c.S2C[0] = b, ^b
	return c
}

func newRotator(t *testing.T, dir string) *Rotator {
	return &Rotator{Dir: dir, Rand: seeded(1), Log: zaptest.NewLogger(t)}
}

func TestLoadCreatesPrivateFile(t *testing.T) {
	dir := t.TempDir()
	r := newRotator(t, dir)
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o, want 600", fi.Mode().Perm())
	}
	if r.Ring() == nil || len(r.Ring().IDs()) != 2 {
		t.Fatal("no fresh ring")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only %s", len(entries), FileName)
	}
}

func TestRestartKeepsCookies(t *testing.T) {
	dir := t.TempDir()
	a := newRotator(t, dir)
	if err := a.Load(); err != nil {
		t.Fatal(err)
	}
	rnd := seeded(2)
	var cookies [][]byte
	for i := range 4 {
		ck, err := a.Ring().SealCookie(nil, testCookie(byte(i)), rnd)
		if err != nil {
			t.Fatal(err)
		}
		cookies = append(cookies, ck)
		if err := a.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	b := newRotator(t, dir) // the restarted daemon
	if err := b.Load(); err != nil {
		t.Fatal(err)
	}
	if b.Ring().CurrentID() != a.Ring().CurrentID() {
		t.Fatal("reloaded ring seals with another key")
	}
	for i, ck := range cookies {
		c, err := b.Ring().OpenCookie(ck)
		if err != nil || c != testCookie(byte(i)) {
			t.Fatalf("cookie %d after restart: %v", i, err)
		}
	}
}

func TestLoadRefusesLooseModeAndCorruption(t *testing.T) {
	dir := t.TempDir()
	r := newRotator(t, dir)
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(r.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := newRotator(t, dir).Load(); !errors.Is(err, secfile.ErrInsecureMode) {
		t.Fatalf("world-readable file: %v", err)
	}
	data, _ := os.ReadFile(r.Path())
	data[len(data)/2] ^= 1
	if err := os.WriteFile(r.Path(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(r.Path(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := newRotator(t, dir).Load(); !errors.Is(err, nts.ErrKeyRing) {
		t.Fatalf("corrupt file: %v", err)
	}
	after, _ := os.ReadFile(r.Path())
	if string(after) != string(data) {
		t.Fatal("a corrupt ring file was overwritten")
	}
}

func TestRotatePersistsBeforeUse(t *testing.T) {
	dir := t.TempDir()
	r := newRotator(t, dir)
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	before := r.Ring()
	// Make the file impossible to replace: rename(2) of a file over a
	// non-empty directory fails, even for root.
	if err := os.Remove(r.Path()); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(r.Path(), "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := r.Rotate(); err == nil {
		t.Fatal("rotation succeeded without saving")
	}
	if r.Ring() != before {
		t.Fatal("an unsaved ring went into service")
	}
	if err := (&Rotator{}).Rotate(); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Rotate before Load: %v", err)
	}
}

func TestRunRotatesOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		r := &Rotator{Dir: dir, Interval: time.Hour, Keep: 3, Rand: seeded(1), Log: zaptest.NewLogger(t)}
		if err := r.Load(); err != nil {
			t.Fatal(err)
		}
		first := r.Ring()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()

		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if r.Ring() != first {
			t.Fatal("rotated before the interval")
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		second := r.Ring()
		if second == first || second.CurrentID() != first.NextID() {
			t.Fatal("no rotation after the interval, or next key not promoted")
		}
		onDisk, err := Load(r.Path())
		if err != nil || onDisk.CurrentID() != second.CurrentID() || onDisk.NextID() != second.NextID() {
			t.Fatalf("the ring in service is not the one on disk: %v", err)
		}
		// An operator rotation resets the schedule.
		time.Sleep(30 * time.Minute)
		if err := r.Rotate(); err != nil {
			t.Fatal(err)
		}
		third := r.Ring()
		time.Sleep(50 * time.Minute)
		synctest.Wait()
		if r.Ring() != third {
			t.Fatal("scheduled rotation ignored the operator's")
		}
		time.Sleep(15 * time.Minute)
		synctest.Wait()
		if r.Ring() == third || len(r.Ring().IDs()) != 1+3 {
			t.Fatalf("ring after 4 rotations: %d keys, want 4", len(r.Ring().IDs()))
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
	})
}

func TestRunRotatesOverdueRingAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		old := &Rotator{Dir: dir, Rand: seeded(1), Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }}
		if err := old.Load(); err != nil {
			t.Fatal(err)
		}
		r := newRotator(t, dir)
		if err := r.Load(); err != nil {
			t.Fatal(err)
		}
		loaded := r.Ring()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go r.Run(ctx)
		synctest.Wait()
		if r.Ring() == loaded {
			t.Fatal("a ring two days old was not rotated on start")
		}
	})
}

func TestRunRetriesFailedRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		r := &Rotator{Dir: dir, Interval: time.Hour, Rand: seeded(1), Log: zaptest.NewLogger(t)}
		if err := r.Load(); err != nil {
			t.Fatal(err)
		}
		first := r.Ring()
		blocker := filepath.Join(r.Path(), "x")
		os.Remove(r.Path())
		os.MkdirAll(blocker, 0o700)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go r.Run(ctx)
		time.Sleep(61 * time.Minute)
		synctest.Wait()
		if r.Ring() != first {
			t.Fatal("ring swapped although it could not be saved")
		}
		os.RemoveAll(r.Path()) // the disk is fixed
		time.Sleep(retryDelay)
		synctest.Wait()
		if r.Ring() == first {
			t.Fatal("rotation not retried")
		}
		if _, err := Load(r.Path()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRunNeedsLoad(t *testing.T) {
	if err := (&Rotator{}).Run(t.Context()); !errors.Is(err, ErrNotLoaded) {
		t.Fatal(err)
	}
}

// TestManualNeverRotates: `ntsrotate 0` means only the operator rotates, however long
// the ring has served (it used to mean the daily default).
func TestManualNeverRotates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &Rotator{Dir: t.TempDir(), Manual: true, Rand: seeded(3), Log: zaptest.NewLogger(t)}
		if err := r.Load(); err != nil {
			t.Fatal(err)
		}
		first := r.Ring()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(30 * 24 * time.Hour)
		synctest.Wait()
		if r.Ring() != first || !r.NextRotation().IsZero() {
			t.Fatal("a manual ring rotated by itself")
		}
		if err := r.Rotate(); err != nil || r.Ring().CurrentID() != first.NextID() {
			t.Fatalf("operator rotation: %v", err)
		}
		cancel()
		<-done
	})
}

// TestPrune: prune keeps next, current and keep-1 older keys and saves before use.
func TestPrune(t *testing.T) {
	r := newRotator(t, t.TempDir())
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := r.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.Ring().IDs()); n != 6 {
		t.Fatalf("%d keys after 4 rotations, want 6", n)
	}
	ids := r.Ring().IDs()
	dropped, err := r.Prune(2)
	// Next, current and one older key stay.
	if err != nil || dropped != 3 {
		t.Fatalf("Prune(2) = %d, %v; want 3 dropped", dropped, err)
	}
	if got := r.Ring().IDs(); len(got) != 3 || got[0] != ids[0] || got[1] != ids[1] || got[2] != ids[2] {
		t.Fatalf("kept %x, want the first 3 of %x", got, ids)
	}
	onDisk, err := Load(r.Path())
	if err != nil || len(onDisk.IDs()) != 3 {
		t.Fatalf("on disk: %v", err)
	}
	if n, err := r.Prune(2); err != nil || n != 0 {
		t.Fatalf("second Prune(2) = %d, %v", n, err)
	}
	if _, err := r.Prune(0); err == nil {
		t.Fatal("Prune(0) accepted: it would leave no sealing key")
	}
}
