package siv

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// FuzzSealOpen checks, for arbitrary keys, nonces, associated data and
// plaintexts: Open inverts Seal, in-place Seal equals Seal into a fresh
// buffer, and flipping any one bit of the ciphertext, the nonce or the AD
// makes Open fail with a zeroed output region. A Cipher under the same key
// must agree with the AEAD byte for byte, sealing in one call or split
// around the associated data, and must reject the flipped ciphertext too.
func FuzzSealOpen(f *testing.F) {
	f.Add([]byte("k"), uint8(0), []byte("0123456789abcdef"), []byte(""), []byte(""), uint16(0))
	f.Add([]byte("key"), uint8(1), []byte{1}, []byte("ntp header"), []byte("sixteen bytes!!!"), uint16(77))
	f.Add([]byte("k2"), uint8(2), bytes.Repeat([]byte{9}, 33), bytes.Repeat([]byte{2}, 228), bytes.Repeat([]byte{3}, 900), uint16(5000))
	f.Add([]byte{}, uint8(0), []byte("n"), []byte{}, []byte("fifteen bytes!!"), uint16(3))
	f.Fuzz(func(t *testing.T, seed []byte, size uint8, nonce, ad, p []byte, flip uint16) {
		if len(nonce) == 0 {
			return
		}
		key := fuzzKey(seed, size)
		a := newAEAD(t, useAsm, key)
		ct := a.Seal(nil, nonce, p, ad)
		if len(ct) != len(p)+TagSize {
			t.Fatalf("Seal output %d bytes for %d plaintext bytes", len(ct), len(p))
		}
		pt, err := a.Open(nil, nonce, ct, ad)
		if err != nil || !bytes.Equal(pt, p) {
			t.Fatalf("Open(Seal(p)) = %x, %v", pt, err)
		}
		buf := make([]byte, len(p), len(p)+TagSize)
		copy(buf, p)
		if inPlace := a.Seal(buf[:0], nonce, buf, ad); !bytes.Equal(inPlace, ct) {
			t.Fatalf("in-place Seal = %x, want %x", inPlace, ct)
		}

		bit := int(flip) % (8 * len(ct))
		bad := bytes.Clone(ct)
		bad[bit/8] ^= 1 << (bit % 8)
		out := bytes.Repeat([]byte{0xff}, len(p))
		if pt, err := a.Open(out[:0], nonce, bad, ad); pt != nil || !errors.Is(err, ErrOpen) {
			t.Fatalf("ciphertext bit %d flipped: Open = %x, %v", bit, pt, err)
		}
		if !bytes.Equal(out, make([]byte, len(p))) {
			t.Fatalf("failed Open left %x in the output region", out)
		}
		checkFuzzCipher(t, key, nonce, ad, p, ct, bad)
		nbit := int(flip) % (8 * len(nonce))
		badNonce := bytes.Clone(nonce)
		badNonce[nbit/8] ^= 1 << (nbit % 8)
		if _, err := a.Open(nil, badNonce, ct, ad); !errors.Is(err, ErrOpen) {
			t.Fatalf("nonce bit %d flipped: Open = %v", nbit, err)
		}
		if len(ad) > 0 {
			abit := int(flip) % (8 * len(ad))
			badAD := bytes.Clone(ad)
			badAD[abit/8] ^= 1 << (abit % 8)
			if _, err := a.Open(nil, nonce, ct, badAD); !errors.Is(err, ErrOpen) {
				t.Fatalf("AD bit %d flipped: Open = %v", abit, err)
			}
		}
	})
}

// fuzzKey expands a seed to one of the three SIV key sizes.
func fuzzKey(seed []byte, size uint8) []byte {
	h1 := sha256.Sum256(seed)
	h2 := sha256.Sum256(h1[:])
	key := append(h1[:], h2[:]...)
	return key[:[]int{32, 48, 64}[size%3]]
}

// checkFuzzCipher: Cipher agrees with AEAD's ct, whole and split, opens it,
// and rejects bad.
func checkFuzzCipher(t *testing.T, key, nonce, ad, p, ct, bad []byte) {
	t.Helper()
	var c Cipher
	if err := c.SetKey(key); err != nil {
		t.Fatal(err)
	}
	if got := c.Seal(nil, nonce, p, ad); !bytes.Equal(got, ct) {
		t.Fatalf("Cipher.Seal = %x, AEAD.Seal = %x", got, ct)
	}
	split := append(make([]byte, TagSize), p...)
	c.PrepareSeal(split, nonce)
	c.FinishSeal(split, ad)
	if !bytes.Equal(split, ct) {
		t.Fatalf("PrepareSeal+FinishSeal = %x, AEAD.Seal = %x", split, ct)
	}
	if pt, err := c.Open(nil, nonce, ct, ad); err != nil || !bytes.Equal(pt, p) {
		t.Fatalf("Cipher.Open(Seal(p)) = %x, %v", pt, err)
	}
	if pt, err := c.Open(nil, nonce, bad, ad); pt != nil || !errors.Is(err, ErrOpen) {
		t.Fatalf("Cipher.Open of a flipped ciphertext = %x, %v", pt, err)
	}
}
