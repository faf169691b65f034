package nts

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// Every ring, a fleet's with no pending key or several included, crosses
// to a helper process whole: the same keys, the same sealing key.
func TestHandoverRoundTrip(t *testing.T) {
	rot, err := testRing(t, 1).Rotated(testEpoch, seeded(2), 3)
	if err != nil {
		t.Fatal(err)
	}
	rings := map[string]*KeyRing{
		"new":              testRing(t, 1),
		"rotated":          rot,
		"fleet, 0 pending": fleetRing(t, 0, 0),
		"fleet, 2 pending": fleetRing(t, 2, 5),
		"fleet, max":       fleetRing(t, MaxPending, MaxKeep-1),
	}
	for name, r := range rings {
		got, err := UnmarshalHandover(r.MarshalHandover())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.CurrentID() != r.CurrentID() || !slices.Equal(got.IDs(), r.IDs()) || !got.RotatedAt().Equal(r.RotatedAt()) {
			t.Fatalf("%s: ring changed on the way: %v/%d, want %v/%d", name, got.IDs(), got.CurrentID(), r.IDs(), r.CurrentID())
		}
		ck, err := got.SealCookie(nil, testCookie(1), seeded(3))
		if err != nil {
			t.Fatal(err)
		}
		if c, err := r.OpenCookie(ck); err != nil || c != testCookie(1) {
			t.Fatalf("%s: the original ring cannot open the copy's cookie: %v", name, err)
		}
	}
}

// A handover is not a ring file, nor the other way round, and a sealing
// index outside the ring or past MaxPending is refused.
func TestHandoverRejects(t *testing.T) {
	r := fleetRing(t, 1, 2)
	h := r.MarshalHandover()
	if _, err := UnmarshalKeyRing(h); !errors.Is(err, ErrKeyRing) {
		t.Fatalf("a handover read as a ring file: %v", err)
	}
	file, _ := testRing(t, 1).MarshalBinary()
	if _, err := UnmarshalHandover(file); !errors.Is(err, ErrKeyRing) {
		t.Fatalf("a ring file read as a handover: %v", err)
	}
	for _, seal := range []byte{4, MaxPending + 1, 255} { // 4 keys: index 4 is outside
		m := slices.Clone(h[:len(h)-ringSumLen])
		m[6] = seal
		if _, err := UnmarshalHandover(appendSum(m)); !errors.Is(err, ErrKeyRing) {
			t.Fatalf("sealing index %d taken: %v", seal, err)
		}
	}
	m := slices.Clone(h)
	m[len(m)-40] ^= 1
	if _, err := UnmarshalHandover(m); !errors.Is(err, ErrKeyRing) {
		t.Fatalf("a corrupted key taken: %v", err)
	}
}

func FuzzUnmarshalHandover(f *testing.F) {
	for _, r := range []*KeyRing{testRing(f, 1), fleetRing(f, 0, 0), fleetRing(f, 2, 3)} {
		h := r.MarshalHandover()
		f.Add(h, false)
		f.Add(h[:len(h)-ringSumLen], true)
	}
	f.Add([]byte("TGKH\x01\x01\x00\x00"), true)
	f.Fuzz(func(t *testing.T, data []byte, fixSum bool) {
		if fixSum { // let the fuzzer past the checksum to reach the parser
			data = appendSum(data)
		}
		r, err := UnmarshalHandover(data)
		if err != nil {
			if !errors.Is(err, ErrKeyRing) {
				t.Fatalf("error %v does not wrap ErrKeyRing", err)
			}
			return
		}
		if !bytes.Equal(r.MarshalHandover(), data) {
			t.Fatal("marshal(unmarshal(x)) != x")
		}
		ck, err := r.SealCookie(nil, testCookie(1), seeded(4))
		if err != nil {
			t.Fatal(err)
		}
		if c, err := r.OpenCookie(ck); err != nil || c != testCookie(1) {
			t.Fatalf("a handed-over ring cannot open its own cookie: %v", err)
		}
	})
}
