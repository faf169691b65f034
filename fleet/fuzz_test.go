package fleet

import (
	"bytes"
	"testing"
	"time"
)

// FuzzOpen feeds hostile store values to the entry decoder: it never
// panics, and whatever opens re-seals to an entry that opens identically
// (a forged value cannot open without the wrapping key, so in practice only
// the seeds' genuine entries get that far).
func FuzzOpen(f *testing.F) {
	s := testSealer(f, testPrefix)
	e := Entry{ID: 0x0a0b0c0d, Created: t0, Activate: t0.Add(time.Minute)}
	raw, _ := s.Seal(e, seeded(9))
	f.Add(uint32(e.ID), raw)
	f.Add(uint32(1), []byte("TGFK"))
	f.Add(uint32(2), make([]byte, EntryLen))
	f.Fuzz(func(t *testing.T, id uint32, data []byte) {
		got, err := s.Open(s.Name(id), data)
		if err != nil {
			return
		}
		if got.ID != id {
			t.Fatalf("opened id %x under name %x", got.ID, id)
		}
		re, err := s.Seal(got, seeded(1))
		if err != nil {
			t.Fatal(err)
		}
		if back, err := s.Open(s.Name(id), re); err != nil || back != got {
			t.Fatalf("re-seal round trip: %v", err)
		}
	})
}

// FuzzSnapshot: the local copy's decoder never panics, and what it accepts
// re-encodes to the same bytes.
func FuzzSnapshot(f *testing.F) {
	s := testSealer(f, testPrefix)
	st := New(Config{Sealer: s, Interval: time.Hour, Delay: time.Minute, Grace: time.Hour})
	name, raw, _, _ := st.NewEntry(t0, seeded(8), true)
	_ = st.Put(name, raw, t0)
	f.Add(s.MarshalSnapshot(st.Entries()))
	f.Add(s.MarshalSnapshot(nil))
	f.Add([]byte("TGFS\x01\x00\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kvs, err := s.UnmarshalSnapshot(data)
		if err != nil {
			return
		}
		if !bytes.Equal(s.MarshalSnapshot(kvs), data) {
			t.Fatal("snapshot does not re-encode to itself")
		}
		fresh := New(Config{Sealer: s, Interval: time.Hour, Delay: time.Minute, Grace: time.Hour})
		fresh.Reset(kvs, t0)
	})
}

// FuzzOpenPolicy: a hostile policy value never panics, and whatever opens
// re-seals to the same text and time.
func FuzzOpenPolicy(f *testing.F) {
	s := testSealer(f, testPrefix)
	good, _ := s.SealPolicy([]byte("restrict default ignore\n"), t0, seeded(4))
	f.Add(good)
	f.Add([]byte("TGFP\x01\x00\x00\x00"))
	f.Add([]byte("restrict default\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		text, at, err := s.OpenPolicy(data)
		if err != nil {
			return
		}
		re, err := s.SealPolicy(text, at, seeded(1))
		if err != nil {
			t.Fatal(err)
		}
		if t2, at2, err := s.OpenPolicy(re); err != nil || !bytes.Equal(t2, text) || !at2.Equal(at) {
			t.Fatalf("re-seal round trip: %v", err)
		}
	})
}

// FuzzOpenCutoff: hostile store values at PREFIX/cutoff never panic, and
// what opens re-seals to the same cutoff.
func FuzzOpenCutoff(f *testing.F) {
	s := testSealer(f, testPrefix)
	raw, _ := s.SealCutoff(t0, t0.Add(time.Second), seeded(5))
	f.Add(raw)
	f.Add([]byte("TGFC\x01\x00\x00\x00"))
	pol, _ := s.SealPolicy([]byte("12345678"), t0, seeded(6))
	f.Add(pol)
	f.Fuzz(func(t *testing.T, data []byte) {
		before, at, err := s.OpenCutoff(data)
		if err != nil {
			return
		}
		re, err := s.SealCutoff(before, at, seeded(1))
		if err != nil {
			t.Fatal(err)
		}
		if b2, a2, err := s.OpenCutoff(re); err != nil || !b2.Equal(before) || !a2.Equal(at) {
			t.Fatalf("re-seal round trip: %v", err)
		}
	})
}
