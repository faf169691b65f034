package etcdring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/fleet"
)

func testState(t *testing.T) *fleet.State {
	s, err := fleet.NewSealer(bytes.Repeat([]byte{3}, fleet.WrapKeyLen), "/t")
	if err != nil {
		t.Fatal(err)
	}
	return fleet.New(fleet.Config{Sealer: s, Interval: time.Hour, Delay: time.Minute, Grace: time.Hour})
}

// A gateway started while etcd is unreachable serves the local copy,
// reports the outage, and refuses to publish a rotation.
func TestOfflineStartServesLocalCopy(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	src := testState(t)
	name, raw, e, err := src.NewEntry(now, rand.NewChaCha8([32]byte{1}), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Put(name, raw, now); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "ntsfleet.bin")
	if err := os.WriteFile(copyPath, src.Config().Sealer.MarshalSnapshot(src.Entries()), 0o600); err != nil {
		t.Fatal(err)
	}
	var refusals int
	k, err := New(Config{
		Dial:      func() (Store, error) { return nil, errors.New("no etcd here") },
		State:     testState(t),
		LocalCopy: copyPath,
		Log:       zaptest.NewLogger(t),
		OnRefused: func(string, error) { refusals++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Load(); err != nil {
		t.Fatal(err)
	}
	if r := k.Ring(); r == nil || r.CurrentID() != e.ID {
		t.Fatalf("local copy not served: %v", r)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := k.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	st := k.Status()
	if st.Connected || st.LastError == "" || st.Since.IsZero() {
		t.Fatalf("outage not reported: %+v", st)
	}
	if _, err := k.Rotate(t.Context()); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("rotation while disconnected: %v", err)
	}
	// A flood of refusals is counted whole but reported 20 at a time.
	for range 50 {
		k.refuse("/t/keys/junk", fleet.ErrMalformed)
	}
	if k.Status().Refused != 50 || refusals != refusalReports {
		t.Fatalf("refused %d, reported %d", k.Status().Refused, refusals)
	}
}

func keeperOn(t *testing.T, m *memStore, seed byte, dir string) *Keeper {
	t.Helper()
	s, err := fleet.NewSealer(bytes.Repeat([]byte{3}, fleet.WrapKeyLen), "/t")
	if err != nil {
		t.Fatal(err)
	}
	st := fleet.New(fleet.Config{Sealer: s, Interval: 10 * time.Hour, Delay: time.Minute, Grace: 2 * time.Hour})
	k, err := New(Config{Dial: m.dial, State: st, Scheduled: true, Rand: rand.NewChaCha8([32]byte{seed}),
		LocalCopy: filepath.Join(dir, "copy.bin"), Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Load(); err != nil {
		t.Fatal(err)
	}
	return k
}

// Two gateways on one store, on a fake clock: the fleet's first key is
// published once and serves on both; a rotation due on both at the same
// moment is published once, is pending on both, and seals on both when the
// delay ends; the superseded key is deleted from the store after its grace;
// an outage is noticed, refuses rotations, and ends with a catch-up.
func TestKeepersShareOneRing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemStore()
		a, b := keeperOn(t, m, 1, t.TempDir()), keeperOn(t, m, 2, t.TempDir())
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 2)
		go func() { done <- a.Run(ctx) }()
		go func() { done <- b.Run(ctx) }()
		same := func(phase string) uint32 {
			t.Helper()
			ra, rb := a.Ring(), b.Ring()
			if ra == nil || rb == nil || ra.CurrentID() != rb.CurrentID() || !slices.Equal(ra.IDs(), rb.IDs()) {
				t.Fatalf("%s: the gateways serve different rings: %v / %v", phase, ra, rb)
			}
			return ra.CurrentID()
		}

		time.Sleep(time.Second)
		synctest.Wait()
		first := same("start")
		if n := len(m.names("/t/keys/")); n != 1 {
			t.Fatalf("%d first keys published", n)
		}

		time.Sleep(10*time.Hour - time.Minute) // the rotation is due on both now
		synctest.Wait()
		if n := len(m.names("/t/keys/")); n != 2 {
			t.Fatalf("%d keys after one due rotation, want 2", n)
		}
		if same("pending") != first || a.Ring().Pending() != 1 {
			t.Fatal("the new key seals before its delay, or is not pending")
		}
		second := a.Ring().NextID()
		time.Sleep(time.Minute + 2*time.Second)
		synctest.Wait()
		if same("activated") != second {
			t.Fatal("the new key does not seal after the delay")
		}

		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if names := m.names("/t/keys/"); len(names) != 1 || slices.Contains(a.Ring().IDs(), first) {
			t.Fatalf("after the grace period the store holds %v and the ring %v", names, a.Ring().IDs())
		}

		m.setDown(true)
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if a.Status().Connected || b.Status().Connected {
			t.Fatal("outage not noticed")
		}
		if _, err := a.Rotate(ctx); !errors.Is(err, ErrDisconnected) {
			t.Fatalf("rotation during the outage: %v", err)
		}
		if same("outage") != second {
			t.Fatal("the ring changed during the outage")
		}
		m.setDown(false)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if !a.Status().Connected || !b.Status().Connected {
			t.Fatal("no catch-up after the outage")
		}
		e, err := b.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if a.Ring().NextID() != e.ID || b.Ring().NextID() != e.ID {
			t.Fatal("the rotation after the outage did not reach both gateways")
		}
		cancel()
		for range 2 {
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
		}
	})
}

// TestFleetPrune: after a suspected key leak, rotate, wait for the new key to
// seal, then prune: the superseded key stops opening cookies on both
// gateways at once (not after its grace period), its entry leaves the store,
// and a gateway started later, from the store, never serves it.
func TestFleetPrune(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemStore()
		a, b := keeperOn(t, m, 1, t.TempDir()), keeperOn(t, m, 2, t.TempDir())
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go a.Run(ctx)
		go b.Run(ctx)
		time.Sleep(time.Second)
		synctest.Wait()
		leaked := a.Ring().CurrentID()
		if _, err := a.Prune(ctx, 1); !errors.Is(err, ErrNothingToRevoke) {
			t.Fatalf("prune with one key: %v", err)
		}
		e, err := a.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(e.Activate) + 2*time.Second)
		synctest.Wait()
		if !slices.Contains(b.Ring().IDs(), leaked) || b.Ring().CurrentID() != e.ID {
			t.Fatal("before the prune the old key should still open cookies (grace), the new one seal")
		}
		all, _, _, _ := m.ReadAll(ctx, "/t/keys/", 100)
		var leakedKV StoreKV
		for _, kv := range all {
			if strings.HasSuffix(kv.Name, fmt.Sprintf("%08x", leaked)) {
				leakedKV = kv
			}
		}
		revoked, err := b.Prune(ctx, 1)
		if err != nil || len(revoked) != 1 || revoked[0] != leaked {
			t.Fatalf("prune: %x %v", revoked, err)
		}
		synctest.Wait()
		for i, k := range []*Keeper{a, b} {
			if ids := k.Ring().IDs(); slices.Contains(ids, leaked) || k.Ring().CurrentID() != e.ID {
				t.Fatalf("gateway %d serves %x after the prune", i, ids)
			}
			if k.Status().Cutoff.IsZero() {
				t.Fatalf("gateway %d shows no cutoff", i)
			}
		}
		if names := m.names("/t/keys/"); len(names) != 1 {
			t.Fatalf("store keys after the prune: %v", names)
		}
		// The revoked entry written back by a store writer stays out, and
		// a gateway that starts now never serves it.
		if err := m.Put(ctx, leakedKV.Name, leakedKV.Value); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if slices.Contains(a.Ring().IDs(), leaked) || a.Status().Refused == 0 {
			t.Fatal("the revoked entry, written back, was taken")
		}
		c := keeperOn(t, m, 3, t.TempDir())
		go c.Run(ctx)
		time.Sleep(time.Second)
		synctest.Wait()
		if ids := c.Ring().IDs(); c.Ring() == nil || slices.Contains(ids, leaked) || len(ids) != 1 {
			t.Fatalf("a gateway started after the prune serves %x", ids)
		}
	})
}
