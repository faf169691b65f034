package etcdring

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
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
		Dial:      func() (*clientv3.Client, error) { return nil, errors.New("no etcd here") },
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
