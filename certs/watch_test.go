package certs

import (
	"context"
	"errors"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"timegate/internal/secfile"
)

// Watch, under a fake clock: it swaps on change, retries a half-replaced
// pair at every poll but reports it once, reports recovery, and stays
// quiet when nothing changed.
func TestWatchEvents(t *testing.T) {
	a, b, c := validPair(t, "p256"), validPair(t, "p256"), validPair(t, "ed25519")
	synctest.Test(t, func(t *testing.T) {
		certFile, keyFile := files(t, t.TempDir(), a)
		s, err := NewStore(certFile, keyFile, Options{Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		events := make(chan Event, 100)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			s.Watch(ctx, time.Second, func(e Event) { events <- e })
			close(done)
		}()
		// step lets polls run for d and returns the events they reported.
		step := func(d time.Duration) []Event {
			time.Sleep(d)
			synctest.Wait()
			var got []Event
			for len(events) > 0 {
				got = append(got, <-events)
			}
			return got
		}
		if evs := step(10 * time.Second); len(evs) != 0 {
			t.Fatalf("unchanged files: %d events", len(evs))
		}

		// Certificate replaced, key not yet: one failure, old pair kept.
		if err := secfile.WriteAtomic(certFile, b.cert, 0o644); err != nil {
			t.Fatal(err)
		}
		evs := step(1500 * time.Millisecond)
		if len(evs) != 1 || !errors.Is(evs[0].Err, ErrKeyMismatch) || evs[0].Changed ||
			evs[0].Info.Fingerprint != fingerprint(a) {
			t.Fatalf("half-replaced pair: events %+v", evs)
		}
		if evs := step(10 * time.Second); len(evs) != 0 {
			t.Fatalf("the same failure was reported again: %+v", evs)
		}
		if servedFP(t, s) != fingerprint(a) {
			t.Fatal("mismatched pair served")
		}

		// The key catches up: swapped at the next poll.
		if err := secfile.WriteAtomic(keyFile, b.key, 0o600); err != nil {
			t.Fatal(err)
		}
		evs = step(time.Second)
		if len(evs) != 1 || !evs[0].Changed || evs[0].Err != nil || evs[0].Info.Fingerprint != fingerprint(b) {
			t.Fatalf("completed pair: events %+v", evs)
		}
		if servedFP(t, s) != fingerprint(b) {
			t.Fatal("new pair not served")
		}

		// Same content rewritten (new inode): reloaded, but no event.
		if err := secfile.WriteAtomic(certFile, b.cert, 0o644); err != nil {
			t.Fatal(err)
		}
		if evs := step(3 * time.Second); len(evs) != 0 {
			t.Fatalf("identical rewrite: events %+v", evs)
		}

		// A loosened key mode is refused; fixing it is a recovery.
		if err := os.Chmod(keyFile, 0o644); err != nil {
			t.Fatal(err)
		}
		evs = step(time.Second)
		if len(evs) != 1 || !errors.Is(evs[0].Err, secfile.ErrInsecureMode) {
			t.Fatalf("chmod 644: events %+v", evs)
		}
		if err := os.Chmod(keyFile, 0o600); err != nil {
			t.Fatal(err)
		}
		evs = step(time.Second)
		if len(evs) != 1 || evs[0].Err != nil || evs[0].Changed {
			t.Fatalf("chmod 600 again: events %+v", evs)
		}

		// A deleted file is one failure, however long it stays away.
		if err := os.Rename(certFile, certFile+".away"); err != nil {
			t.Fatal(err)
		}
		evs = step(5 * time.Second)
		if len(evs) != 1 || !errors.Is(evs[0].Err, os.ErrNotExist) {
			t.Fatalf("deleted cert: events %+v", evs)
		}
		if err := os.Rename(certFile+".away", certFile); err != nil {
			t.Fatal(err)
		}
		evs = step(time.Second)
		if len(evs) != 1 || evs[0].Err != nil || evs[0].Changed {
			t.Fatalf("cert restored: events %+v", evs)
		}

		// A SIGHUP-style Reload that already swapped leaves Watch nothing to do.
		if err := secfile.WriteAtomic(keyFile, c.key, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := secfile.WriteAtomic(certFile, c.cert, 0o644); err != nil {
			t.Fatal(err)
		}
		if changed, err := s.Reload(); !changed || err != nil {
			t.Fatalf("Reload: %v, %v", changed, err)
		}
		if evs := step(3 * time.Second); len(evs) != 0 {
			t.Fatalf("Watch after Reload: events %+v", evs)
		}

		cancel()
		<-done
	})
}

func TestWatchDefaultInterval(t *testing.T) {
	a, b := validPair(t, "p256"), validPair(t, "p256")
	synctest.Test(t, func(t *testing.T) {
		certFile, keyFile := files(t, t.TempDir(), a)
		s, err := NewStore(certFile, keyFile, Options{Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		go s.Watch(t.Context(), 0, nil) // nil onEvent must be fine
		if err := secfile.WriteAtomic(keyFile, b.key, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := secfile.WriteAtomic(certFile, b.cert, 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(DefaultWatchInterval - time.Millisecond)
		synctest.Wait()
		if servedFP(t, s) != fingerprint(a) {
			t.Fatal("swapped before the first poll")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if servedFP(t, s) != fingerprint(b) {
			t.Fatal("not swapped at the first poll")
		}
	})
}
