package fleet

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

const testPrefix = "/timegate/test"

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func testSealer(t testing.TB, prefix string) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{7}, WrapKeyLen), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func seeded(seed uint64) *rand.ChaCha8 {
	var b [32]byte
	b[0] = byte(seed)
	return rand.NewChaCha8(b)
}

func newTestState(t testing.TB) *State {
	return New(Config{Sealer: testSealer(t, testPrefix), Interval: time.Hour, Delay: time.Minute, Grace: 3 * time.Hour})
}

// publish makes a rotation at now and feeds it back, as the store's watch does.
func publish(t *testing.T, s *State, now time.Time, first bool, rng *rand.ChaCha8) Entry {
	t.Helper()
	name, raw, e, err := s.NewEntry(now, rng, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(name, raw, now); err != nil {
		t.Fatalf("own entry refused: %v", err)
	}
	return e
}

func TestSealRoundTripAndTamper(t *testing.T) {
	s := testSealer(t, testPrefix)
	e := Entry{ID: 0x01020304, Created: t0, Activate: t0.Add(time.Minute)}
	e.Secret[0] = 9
	raw, err := s.Seal(e, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Open(s.Name(e.ID), raw)
	if err != nil || got != e {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x40
		if _, err := s.Open(s.Name(e.ID), bad); err == nil {
			t.Fatalf("flipping byte %d still opens", i)
		}
	}
	if _, err := s.Open(s.Name(e.ID+1), raw); !errors.Is(err, ErrMalformed) {
		t.Fatalf("entry under another id: %v", err)
	}
	other := testSealer(t, "/timegate/other")
	if _, err := other.Open(other.Name(e.ID), raw); !errors.Is(err, ErrSeal) {
		t.Fatalf("entry moved to another prefix: %v", err)
	}
	plain := append([]byte("TGFK\x01\x00\x00\x00\x01\x02\x03\x04"), make([]byte, EntryLen-12)...)
	if _, err := s.Open(s.Name(e.ID), plain); !errors.Is(err, ErrSeal) {
		t.Fatalf("unsealed entry: %v", err)
	}
}

func TestRotationWaitsForPropagation(t *testing.T) {
	rng := seeded(2)
	a, b := newTestState(t), newTestState(t)
	first := publish(t, a, t0, true, rng)
	for _, kv := range a.Entries() {
		if err := b.Put(kv.Name, kv.Value, t0); err != nil {
			t.Fatal(err)
		}
	}
	ring, err := b.Ring(t0)
	if err != nil || ring.CurrentID() != first.ID {
		t.Fatalf("first key does not seal at once: %v", err)
	}
	now := t0.Add(time.Hour - time.Minute)
	if !a.Due(now) || a.Due(now.Add(-time.Second)) {
		t.Fatal("rotation not due one delay before the interval ends")
	}
	second := publish(t, a, now, false, rng)
	if a.Due(now) {
		t.Fatal("due again while a key is pending")
	}
	ring, _ = a.Ring(now.Add(time.Minute - time.Second))
	if ring.CurrentID() != first.ID || ring.NextID() != second.ID {
		t.Fatalf("pending key seals before the delay: current %x next %x", ring.CurrentID(), ring.NextID())
	}
	if got := a.NextEvent(now); !got.Equal(second.Activate) {
		t.Fatalf("next event %v, want activation %v", got, second.Activate)
	}
	ring, _ = a.Ring(second.Activate)
	if ring.CurrentID() != second.ID || len(ring.IDs()) != 2 {
		t.Fatalf("after the delay: current %x ids %v", ring.CurrentID(), ring.IDs())
	}
	// The first key opens for Grace after the second began sealing, then goes.
	if names := a.Prune(second.Activate.Add(3*time.Hour - time.Second)); len(names) != 0 {
		t.Fatalf("pruned within grace: %v", names)
	}
	if names := a.Prune(second.Activate.Add(3 * time.Hour)); len(names) != 1 || names[0] != a.cfg.Sealer.Name(first.ID) {
		t.Fatalf("prune after grace: %v", names)
	}
}

func TestReplayAndEarlyDeleteContained(t *testing.T) {
	rng := seeded(3)
	s := newTestState(t)
	old := publish(t, s, t0, true, rng)
	oldKV := s.Entries()[0]
	newer := publish(t, s, t0.Add(time.Hour), false, rng)
	now := newer.Activate.Add(4 * time.Hour)
	if n := s.Prune(now); len(n) != 1 {
		t.Fatalf("prune: %v", n)
	}
	// A store writer replays the pruned entry: it must not come back.
	if err := s.Put(oldKV.Name, oldKV.Value, now); !errors.Is(err, ErrStale) {
		t.Fatalf("replayed entry: %v", err)
	}
	// ... and deletes the sealing key: it stays.
	if err := s.Delete(s.cfg.Sealer.Name(newer.ID), now); !errors.Is(err, ErrEarlyDrop) {
		t.Fatalf("early delete: %v", err)
	}
	ring, err := s.Ring(now)
	if err != nil || ring.CurrentID() != newer.ID {
		t.Fatalf("sealing key after attacks: %v", err)
	}
	// Rewriting an entry under its id is refused, the first version kept.
	e := newer
	e.Secret[0] ^= 1
	raw, _ := s.cfg.Sealer.Seal(e, rng)
	if err := s.Put(s.cfg.Sealer.Name(e.ID), raw, now); !errors.Is(err, ErrChanged) {
		t.Fatalf("rewritten entry: %v", err)
	}
	_ = old
}

func TestResetAndSnapshot(t *testing.T) {
	rng := seeded(4)
	a := newTestState(t)
	publish(t, a, t0, true, rng)
	publish(t, a, t0.Add(30*time.Minute), false, rng)
	snap := a.cfg.Sealer.MarshalSnapshot(a.Entries())
	kvs, err := a.cfg.Sealer.UnmarshalSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	b := newTestState(t)
	bad := append(kvs, KV{Name: a.cfg.Sealer.Name(0xdeadbeef), Value: []byte("plaintext master key")})
	ref := b.Reset(bad, t0.Add(time.Hour))
	if len(ref) != 1 || !errors.Is(ref[0].Err, ErrMalformed) {
		t.Fatalf("refusals: %v", ref)
	}
	ra, _ := a.Ring(t0.Add(time.Hour))
	rb, err := b.Ring(t0.Add(time.Hour))
	if err != nil || ra.CurrentID() != rb.CurrentID() || len(ra.IDs()) != len(rb.IDs()) {
		t.Fatalf("restored ring differs: %v", err)
	}
	snap[len(snap)-1] ^= 1
	if _, err := a.cfg.Sealer.UnmarshalSnapshot(snap); err == nil {
		t.Fatal("corrupted snapshot accepted")
	}
}

func TestBoundedEntries(t *testing.T) {
	rng := seeded(5)
	s := newTestState(t)
	publish(t, s, t0, true, rng)
	now := t0.Add(time.Second)
	var refused int
	for range 3 * MaxEntries {
		name, raw, _, err := s.NewEntry(now, rng, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(name, raw, now); errors.Is(err, ErrFull) {
			refused++
		}
	}
	if len(s.entries) > MaxEntries || refused == 0 {
		t.Fatalf("held %d entries, refused %d", len(s.entries), refused)
	}
	if _, err := s.Ring(now); err != nil {
		t.Fatalf("ring with many pending keys: %v", err)
	}
}

func TestPolicySeal(t *testing.T) {
	s := testSealer(t, testPrefix)
	text := []byte("restrict default ignore\n")
	raw, err := s.SealPolicy(text, t0, seeded(6))
	if err != nil {
		t.Fatal(err)
	}
	got, at, err := s.OpenPolicy(raw)
	if err != nil || !bytes.Equal(got, text) || !at.Equal(t0) {
		t.Fatalf("round trip: %v %q %v", err, got, at)
	}
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		if _, _, err := s.OpenPolicy(bad); err == nil {
			t.Fatalf("flipping byte %d still opens", i)
		}
	}
	if _, _, err := testSealer(t, "/timegate/other").OpenPolicy(raw); err == nil {
		t.Fatal("policy moved to another fleet opens")
	}
	if _, _, err := s.OpenPolicy(text); err == nil {
		t.Fatal("an unsealed policy opens")
	}
}

// TestCutoffRevokes: a cutoff ends superseded keys at once (their deletion
// is then accepted, their replay refused), never the sealing or a pending
// key; an older cutoff replayed later changes nothing.
func TestCutoffRevokes(t *testing.T) {
	rng := seeded(4)
	s := newTestState(t)
	a := publish(t, s, t0, true, rng)
	b := publish(t, s, t0.Add(time.Hour), false, rng)
	c := publish(t, s, t0.Add(2*time.Hour), false, rng)
	now := c.Activate.Add(time.Minute) // a and b still within their grace
	pending := publish(t, s, now, false, rng)
	if _, _, ok := s.PlanCutoff(now, 3); ok {
		t.Fatal("a cutoff planned with no more active keys than kept")
	}
	before, revoked, ok := s.PlanCutoff(now, 1)
	if !ok || !before.Equal(c.Activate) || len(revoked) != 2 || revoked[0] != b.ID || revoked[1] != a.ID {
		t.Fatalf("plan: %v %x %v", before, revoked, ok)
	}
	// Without the cutoff, deleting b is an early drop, and kept.
	if err := s.Delete(s.cfg.Sealer.Name(b.ID), now); !errors.Is(err, ErrEarlyDrop) {
		t.Fatalf("delete before the cutoff: %v", err)
	}
	if !s.Cut(before) || s.Cut(before.Add(-time.Hour)) || !s.Cutoff().Equal(before) {
		t.Fatal("cutoffs must only move forward")
	}
	ring, err := s.Ring(now)
	if err != nil || ring.CurrentID() != c.ID || ring.NextID() != pending.ID || len(ring.IDs()) != 2 {
		t.Fatalf("ring after the cutoff: %v %v", ring.IDs(), err)
	}
	if err := s.Delete(s.cfg.Sealer.Name(b.ID), now); err != nil {
		t.Fatalf("deleting a revoked key: %v", err)
	}
	names := s.Prune(now)
	if len(names) != 1 || names[0] != s.cfg.Sealer.Name(a.ID) {
		t.Fatalf("prune after the cutoff: %v", names)
	}
	raw, _ := s.cfg.Sealer.Seal(a, rng)
	if err := s.Put(s.cfg.Sealer.Name(a.ID), raw, now); err == nil {
		t.Fatal("a revoked key's entry came back")
	}
	// A cutoff past the sealing key (from a gateway that saw a newer key
	// first) still leaves this gateway a sealing key.
	s.Cut(pending.Activate.Add(time.Hour))
	if ring, err := s.Ring(now); err != nil || ring.CurrentID() != c.ID {
		t.Fatalf("sealing key revoked: %v", err)
	}
}

func TestCutoffSeal(t *testing.T) {
	s := testSealer(t, testPrefix)
	raw, err := s.SealCutoff(t0, t0.Add(time.Minute), seeded(7))
	if err != nil {
		t.Fatal(err)
	}
	before, at, err := s.OpenCutoff(raw)
	if err != nil || !before.Equal(t0) || !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("round trip: %v %v %v", before, at, err)
	}
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		if _, _, err := s.OpenCutoff(bad); err == nil {
			t.Fatalf("flipping byte %d still opens", i)
		}
	}
	if _, _, err := testSealer(t, "/timegate/other").OpenCutoff(raw); err == nil {
		t.Fatal("cutoff moved to another fleet opens")
	}
	pol, _ := s.SealPolicy(raw[noticeHeaderLen:noticeHeaderLen+8], t0, seeded(8))
	if _, _, err := s.OpenCutoff(pol); err == nil {
		t.Fatal("a policy opens as a cutoff")
	}
}
