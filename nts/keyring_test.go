package nts

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

func testCookie(seed byte) Cookie {
	c := Cookie{AEAD: AEADAESSIVCMAC256}
	for i := range KeyLen {
		c.C2S[i] = seed + byte(i)
		c.S2C[i] = seed ^ byte(3*i)
	}
	return c
}

func TestCookieRoundTrip(t *testing.T) {
	ring := testRing(t, 1)
	rnd := seeded(2)
	prefix := []byte("prefix")
	for i := range 50 {
		c := testCookie(byte(i))
		out, err := ring.SealCookie(slices.Clone(prefix), c, rnd)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(prefix)+CookieSize || !bytes.Equal(out[:len(prefix)], prefix) {
			t.Fatalf("SealCookie did not append: len %d", len(out))
		}
		got, err := ring.OpenCookie(out[len(prefix):])
		if err != nil || got != c {
			t.Fatalf("OpenCookie = %v, %v", got, err)
		}
	}
	if CookieSize != 104 || CookieSize%4 != 0 {
		t.Fatalf("CookieSize = %d", CookieSize)
	}
	if _, err := ring.SealCookie(nil, Cookie{AEAD: 17}, rnd); !errors.Is(err, ErrUnsupportedAEAD) {
		t.Errorf("AEAD 17 sealed: %v", err)
	}
	// AEAD 30 cookies carry 16-octet keys: 32 octets shorter.
	c := Cookie{AEAD: AEADAES128GCMSIV}
	copy(c.C2S[:16], "c2s-key-16-bytes")
	copy(c.S2C[:16], "s2c-key-16-bytes")
	out, err := ring.SealCookie(nil, c, rnd)
	if err != nil || len(out) != CookieSizeGCMSIV || CookieSizeGCMSIV != 72 {
		t.Fatalf("AEAD 30 cookie: %d bytes, %v", len(out), err)
	}
	if got, err := ring.OpenCookie(out); err != nil || got != c {
		t.Fatalf("AEAD 30 OpenCookie = %+v, %v", got, err)
	}
}

func TestCookieNoncesDiffer(t *testing.T) {
	ring := testRing(t, 1)
	a, _ := ring.SealCookie(nil, testCookie(1), seeded(2))
	b, _ := ring.SealCookie(nil, testCookie(1), seeded(3))
	if bytes.Equal(a, b) {
		t.Fatal("two cookies for the same keys are equal: they would link a client's requests")
	}
}

func TestCookieEveryBitFlipFails(t *testing.T) {
	ring := testRing(t, 1)
	ck, err := ring.SealCookie(nil, testCookie(9), seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	for bit := range len(ck) * 8 {
		m := slices.Clone(ck)
		m[bit/8] ^= 1 << (bit % 8)
		if _, err := ring.OpenCookie(m); err == nil {
			t.Fatalf("cookie with bit %d flipped opened", bit)
		}
	}
}

func TestCookieWrongLengthFails(t *testing.T) {
	ring := testRing(t, 1)
	ck, _ := ring.SealCookie(nil, testCookie(9), seeded(2))
	long := append(slices.Clone(ck), 0)
	for n := range len(long) + 1 {
		if n == CookieSize {
			continue
		}
		if _, err := ring.OpenCookie(long[:n]); !errors.Is(err, ErrCookieInvalid) {
			t.Fatalf("length %d: err = %v", n, err)
		}
	}
}

func TestRotationKeepsAndDrops(t *testing.T) {
	ring := testRing(t, 1)
	rnd := seeded(2)
	ck, _ := ring.SealCookie(nil, testCookie(1), rnd)
	now := testEpoch
	for rot := 1; rot <= DefaultKeep; rot++ {
		now = now.Add(24 * time.Hour)
		next, err := ring.Rotated(now, rnd, 0)
		if err != nil {
			t.Fatal(err)
		}
		if next.CurrentID() != ring.NextID() {
			t.Fatal("rotation did not promote the next key")
		}
		if len(next.IDs()) > 1+DefaultKeep {
			t.Fatalf("ring grew to %d keys", len(next.IDs()))
		}
		ring = next
		_, err = ring.OpenCookie(ck)
		if rot < DefaultKeep && err != nil {
			t.Fatalf("cookie lost after %d rotations: %v", rot, err)
		}
		if rot == DefaultKeep && !errors.Is(err, ErrCookieKeyUnknown) {
			t.Fatalf("cookie of a dropped key: err = %v", err)
		}
	}
	if !ring.RotatedAt().Equal(now) {
		t.Errorf("RotatedAt = %v, want %v", ring.RotatedAt(), now)
	}
}

func TestNextKeyOpensBeforeItSeals(t *testing.T) {
	// Two gateways share a ring file; A rotates first. B, still on the old
	// ring, opens A's new cookies because the new current key was B's next.
	b := testRing(t, 1)
	a, err := b.Rotated(testEpoch.Add(time.Hour), seeded(2), 0)
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := a.SealCookie(nil, testCookie(4), seeded(3))
	if _, err := b.OpenCookie(ck); err != nil {
		t.Fatalf("old ring cannot open new cookie: %v", err)
	}
	ck, _ = b.SealCookie(nil, testCookie(4), seeded(3))
	if _, err := a.OpenCookie(ck); err != nil {
		t.Fatalf("new ring cannot open old cookie: %v", err)
	}
}

func TestRotatedKeepBounds(t *testing.T) {
	ring := testRing(t, 1)
	for _, keep := range []int{-1, MaxKeep + 1} {
		if _, err := ring.Rotated(testEpoch, seeded(2), keep); !errors.Is(err, ErrKeyRing) {
			t.Errorf("keep %d: err = %v", keep, err)
		}
	}
	r1, err := ring.Rotated(testEpoch, seeded(2), 1)
	if err != nil || len(r1.IDs()) != 2 {
		t.Fatalf("keep 1: %v, %d keys", err, len(r1.IDs()))
	}
	if _, err := ring.Rotated(testEpoch, bytes.NewReader(nil), 1); err == nil {
		t.Error("rotation with a dead rand succeeded")
	}
	// A rand that repeats itself cannot produce a fresh id.
	if _, err := ring.Rotated(testEpoch, zeroReader{}, 1); err != nil {
		t.Fatalf("first zero key: %v", err)
	}
	r0, _ := NewKeyRing(testEpoch, seeded(1))
	r0, _ = r0.Rotated(testEpoch, zeroReader{}, 3)
	if _, err := r0.Rotated(testEpoch, zeroReader{}, 3); !errors.Is(err, ErrKeyRing) {
		t.Errorf("duplicate id accepted: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestKeyRingMarshalRoundTrip(t *testing.T) {
	ring := testRing(t, 1)
	rnd := seeded(2)
	var cookies [][]byte
	for i := range 5 {
		ck, _ := ring.SealCookie(nil, testCookie(byte(i)), rnd)
		cookies = append(cookies, ck)
		ring, _ = ring.Rotated(testEpoch.Add(time.Duration(i+1)*time.Hour), rnd, 3)
	}
	data, err := ring.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalKeyRing(data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.IDs(), ring.IDs()) || !got.RotatedAt().Equal(ring.RotatedAt()) {
		t.Fatalf("ids %x at %v, want %x at %v", got.IDs(), got.RotatedAt(), ring.IDs(), ring.RotatedAt())
	}
	again, _ := got.MarshalBinary()
	if !bytes.Equal(again, data) {
		t.Fatal("marshal(unmarshal(x)) != x")
	}
	for i, ck := range cookies {
		_, want := ring.OpenCookie(ck)
		_, err := got.OpenCookie(ck)
		if (err == nil) != (want == nil) {
			t.Errorf("cookie %d: reloaded ring says %v, original %v", i, err, want)
		}
	}
	// A cookie sealed by the reloaded ring opens in the original: same keys.
	ck, _ := got.SealCookie(nil, testCookie(7), rnd)
	if _, err := ring.OpenCookie(ck); err != nil {
		t.Fatal(err)
	}
}

func TestUnmarshalKeyRingRejects(t *testing.T) {
	data, _ := testRing(t, 1).MarshalBinary()
	if _, err := UnmarshalKeyRing(data); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		m := slices.Clone(data)
		m[i] ^= 0x10
		if _, err := UnmarshalKeyRing(m); !errors.Is(err, ErrKeyRing) {
			t.Fatalf("byte %d corrupted: err = %v", i, err)
		}
	}
	for n := range len(data) {
		if _, err := UnmarshalKeyRing(data[:n]); !errors.Is(err, ErrKeyRing) {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
	}
	if _, err := UnmarshalKeyRing(append(slices.Clone(data), 0)); !errors.Is(err, ErrKeyRing) {
		t.Fatal("trailing byte accepted")
	}
}

func BenchmarkSealCookie(b *testing.B) {
	ring := testRing(b, 1)
	rnd := seeded(2)
	c := testCookie(1)
	buf := make([]byte, 0, CookieSize)
	b.ReportAllocs()
	b.SetBytes(CookieSize)
	for b.Loop() {
		if _, err := ring.SealCookie(buf, c, rnd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenCookie(b *testing.B) {
	ring := testRing(b, 1)
	ck, _ := ring.SealCookie(nil, testCookie(1), seeded(2))
	b.ReportAllocs()
	b.SetBytes(CookieSize)
	for b.Loop() {
		if _, err := ring.OpenCookie(ck); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNegotiate(b *testing.B) {
	ring := testRing(b, 1)
	rnd := seeded(2)
	var ex fakeExporter
	req := goodRequest()
	b.ReportAllocs()
	for b.Loop() {
		ex.contexts, ex.labels = ex.contexts[:0], ex.labels[:0]
		if _, err := Negotiate(req, ex.export, ring, rnd, NegotiateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
