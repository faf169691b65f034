package nts

import (
	"errors"
	"testing"
	"time"
)

// fleetRing builds a ring as a fleet store hands it over: pending keys,
// a sealing key, older keys; ids 1.. in that order.
func fleetRing(tb testing.TB, pending, older int) *KeyRing {
	tb.Helper()
	mk := func(id uint32) Key {
		k := Key{ID: id, Created: time.Unix(int64(id), 0)}
		k.Secret[0], k.Secret[31] = byte(id), byte(id>>8)
		return k
	}
	var p, o []Key
	id := uint32(1)
	for range pending {
		p = append(p, mk(id))
		id++
	}
	sealing := mk(id)
	id++
	for range older {
		o = append(o, mk(id))
		id++
	}
	r, err := FromKeys(time.Unix(1e9, 0), p, sealing, o)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestFromKeys(t *testing.T) {
	r := fleetRing(t, 2, 3)
	if r.CurrentID() != 3 || r.NextID() != 2 || r.Pending() != 2 || len(r.IDs()) != 6 {
		t.Fatalf("current %d next %d pending %d ids %v", r.CurrentID(), r.NextID(), r.Pending(), r.IDs())
	}
	if _, err := r.MarshalBinary(); !errors.Is(err, ErrKeyRing) {
		t.Fatal("a fleet ring with two pending keys marshalled in the one-next file format")
	}
	if _, err := r.Rotated(time.Unix(2e9, 0), seeded(1), 0); !errors.Is(err, ErrKeyRing) {
		t.Fatal("a fleet ring rotated locally")
	}
	none := fleetRing(t, 0, 1)
	if none.NextID() != 0 || none.CurrentID() != 1 {
		t.Fatalf("no pending key: next %d current %d", none.NextID(), none.CurrentID())
	}
	// Cookies sealed under any key of one fleet ring open under another
	// built from the same keys (what every gateway of a fleet builds).
	ck, err := r.SealCookie(nil, testCookie(3), seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fleetRing(t, 2, 3).OpenCookie(ck); err != nil {
		t.Fatalf("cookie from an identical fleet ring: %v", err)
	}
	dup := Key{ID: 5}
	if _, err := FromKeys(time.Unix(0, 0), []Key{dup}, dup, nil); !errors.Is(err, ErrKeyRing) {
		t.Fatal("duplicate ids accepted")
	}
	if _, err := FromKeys(time.Unix(0, 0), nil, Key{ID: 0}, nil); !errors.Is(err, ErrKeyRing) {
		t.Fatal("key id 0 accepted")
	}
	if _, err := FromKeys(time.Unix(0, 0), make([]Key, MaxPending+1), Key{ID: 1}, nil); !errors.Is(err, ErrKeyRing) {
		t.Fatal("too many pending keys accepted")
	}
}

// BenchmarkOpenCookieFleetRing opens a cookie sealed under the last key of
// a fleet ring: with one pending key and 7 kept (the default schedule), and
// at the largest ring a fleet state builds (MaxPending + MaxKeep keys), the
// worst case of the linear key lookup.
func BenchmarkOpenCookieFleetRing(b *testing.B) {
	for _, size := range []struct {
		name           string
		pending, older int
	}{{"1+1+6", 1, 6}, {"max-4+1+31", MaxPending, MaxKeep - 1}} {
		b.Run(size.name, func(b *testing.B) {
			ring := fleetRing(b, size.pending, size.older)
			ids := ring.IDs()
			last := fleetRing(b, 0, 0) // a ring whose sealing key is the big ring's last one
			last.keys[0] = *ring.find(ids[len(ids)-1])
			ck, err := last.SealCookie(nil, testCookie(1), seeded(2))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(CookieSize)
			for b.Loop() {
				if _, err := ring.OpenCookie(ck); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
