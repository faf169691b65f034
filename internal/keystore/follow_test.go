package keystore

import (
	"context"
	"errors"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"
)

// Issue 12: an NTP host that follows the KE host's ring file picks up every
// rotation by polling, so the cookies sealed under the KE host's new keys
// open there too — two rotations used to leave it with none of them.
func TestFollowerTracksOwnerRotations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		f := &Rotator{Dir: dir, Follow: true, Poll: time.Second, Log: zaptest.NewLogger(t)}
		if err := f.Load(); err != nil || f.Ring() != nil {
			t.Fatalf("follower without a file: %v, ring %v", err, f.Ring())
		}
		if err := f.Rotate(); !errors.Is(err, ErrFollower) {
			t.Fatalf("follower rotated: %v", err)
		}
		if _, err := os.Stat(f.Path()); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a follower wrote a ring file")
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()

		owner := newRotator(t, dir)
		if err := owner.Load(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			time.Sleep(2 * time.Second)
			synctest.Wait()
			if got := f.Ring(); got == nil || got.CurrentID() != owner.Ring().CurrentID() || got.NextID() != owner.Ring().NextID() {
				t.Fatalf("after %d rotations the follower does not serve the owner's ring", i)
			}
			if err := owner.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
	})
}

// SIGHUP on the owner adopts a ring copied in by hand; a damaged file
// leaves the ring in service, and a removed one is written back.
func TestOwnerReload(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	r := newRotator(t, dir)
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Reload(); changed || err != nil {
		t.Fatalf("reload of an unchanged file: %v %v", changed, err)
	}
	src := &Rotator{Dir: other, Rand: seeded(7), Log: zaptest.NewLogger(t)}
	if err := src.Load(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(src.Path())
	if err := os.WriteFile(r.Path(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Reload(); !changed || err != nil || r.Ring().CurrentID() != src.Ring().CurrentID() {
		t.Fatalf("copied ring not adopted: %v %v", changed, err)
	}
	if err := os.WriteFile(r.Path(), data[:len(data)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reload(); err == nil || r.Ring().CurrentID() != src.Ring().CurrentID() {
		t.Fatalf("damaged file: %v", err)
	}
	os.Remove(r.Path())
	if _, err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if back, err := Load(r.Path()); err != nil || back.CurrentID() != src.Ring().CurrentID() {
		t.Fatalf("removed file not written back: %v", err)
	}
}
