package fleet

import (
	"testing"
	"time"
)

// BenchmarkOpenEntry: authenticating one sealed store entry (per watch event).
func BenchmarkOpenEntry(b *testing.B) {
	s := testSealer(b, testPrefix)
	e := Entry{ID: 0x01020304, Created: t0, Activate: t0}
	raw, _ := s.Seal(e, seeded(1))
	name := s.Name(e.ID)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(name, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRing: building the ring to serve from a full state (MaxEntries
// held), what every store event and key activation costs a gateway.
func BenchmarkRing(b *testing.B) {
	st := New(Config{Sealer: testSealer(b, testPrefix), Interval: time.Hour, Delay: time.Minute, Grace: 1000 * time.Hour})
	rng := seeded(3)
	now := t0
	for i := range MaxEntries - 4 {
		name, raw, _, err := st.NewEntry(now, rng, i == 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Put(name, raw, now); err != nil {
			b.Fatal(err)
		}
		now = now.Add(time.Hour)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Ring(now); err != nil {
			b.Fatal(err)
		}
	}
}
