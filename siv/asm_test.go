package siv

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// maxDiffLen bounds the lengths the differential checks draw: past a few
// hundred octets the kernels only repeat their eight-block loop, and
// 600 covers every NTS size (a 228-octet AD, 8 cookies of 104 octets are
// sealed 104 at a time) and every remainder modulo 16 and 128.
const maxDiffLen = 600

// checkPathsAgree holds the AES-NI path to the crypto/aes reference on one
// input: AEAD Seal and Open, Cipher Seal and Open, PrepareSeal+FinishSeal,
// a Cipher keyed through a Key with and without its CTR key, CMAC Sum and
// Verify under K1 (16, 24 or 32 octets), and the same tampered ciphertext
// refused by both with a zeroed output region.
func checkPathsAgree(t *testing.T, key, nonce, ad, p []byte, flip int) {
	t.Helper()
	ref, err := newSIV(key, false)
	if err != nil {
		t.Fatal(err)
	}
	asm, err := newSIV(key, true)
	if err != nil {
		t.Fatal(err)
	}
	want := ref.Seal(nil, nonce, p, ad)
	if got := asm.Seal(nil, nonce, p, ad); !bytes.Equal(got, want) {
		t.Fatalf("key %d, ad %d, p %d: asm Seal %x, reference %x", len(key), len(ad), len(p), got, want)
	}
	if got, err := asm.Open(nil, nonce, want, ad); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("asm Open of the reference ciphertext: %x, %v", got, err)
	}
	buf := make([]byte, len(p), len(p)+TagSize)
	copy(buf, p)
	if got := asm.Seal(buf[:0], nonce, buf, ad); !bytes.Equal(got, want) {
		t.Fatalf("asm in-place Seal %x, reference %x", got, want)
	}
	inPlace := bytes.Clone(want)
	if got, err := asm.Open(inPlace[:0], nonce, inPlace, ad); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("asm in-place Open: %x, %v", got, err)
	}

	var c Cipher
	if err := c.setKey(key, true); err != nil {
		t.Fatal(err)
	}
	if got := c.Seal(nil, nonce, p, ad); !bytes.Equal(got, want) {
		t.Fatalf("asm Cipher.Seal %x, reference %x", got, want)
	}
	split := append(make([]byte, TagSize), p...)
	c.PrepareSeal(split, nonce)
	c.FinishSeal(split, ad)
	if !bytes.Equal(split, want) {
		t.Fatalf("asm PrepareSeal+FinishSeal %x, reference %x", split, want)
	}
	for _, ctr := range []bool{false, true} {
		var k Key
		if err := k.setKey(key, ctr, true); err != nil {
			t.Fatal(err)
		}
		c.UseKey(&k)
		if got, err := c.Open(nil, nonce, want, ad); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("asm Key (ctr %v) Open: %x, %v", ctr, got, err)
		}
	}

	bad := bytes.Clone(want)
	bit := flip % (8 * len(bad))
	bad[bit/8] ^= 1 << (bit % 8)
	for _, a := range []*AEAD{ref, asm} {
		out := bytes.Repeat([]byte{0xff}, len(p))
		if got, err := a.Open(out[:0], nonce, bad, ad); got != nil || !errors.Is(err, ErrOpen) {
			t.Fatalf("bit %d flipped: Open (asm %v) = %x, %v", bit, a.asm, got, err)
		}
		if !bytes.Equal(out, make([]byte, len(p))) {
			t.Fatalf("bit %d flipped: Open (asm %v) left %x", bit, a.asm, out)
		}
	}
	c.UseKey(&Key{sivKey: asm.sivKey})
	if got, err := c.Open(nil, nonce, bad, ad); got != nil || !errors.Is(err, ErrOpen) {
		t.Fatalf("bit %d flipped: asm Cipher.Open = %x, %v", bit, got, err)
	}

	macKey := key[:len(key)/2]
	refMAC, err := newCMAC(macKey, false)
	if err != nil {
		t.Fatal(err)
	}
	asmMAC, err := newCMAC(macKey, true)
	if err != nil {
		t.Fatal(err)
	}
	msg := append(bytes.Clone(ad), p...)
	tag := refMAC.Sum(nil, msg)
	if got := asmMAC.Sum(nil, msg); !bytes.Equal(got, tag) {
		t.Fatalf("CMAC-%d over %d octets: asm %x, reference %x", 8*len(macKey), len(msg), got, tag)
	}
	if !asmMAC.Verify(msg, tag) {
		t.Fatal("asm CMAC Verify refused the reference tag")
	}
	tag[bit%BlockSize] ^= 1
	if asmMAC.Verify(msg, tag) || refMAC.Verify(msg, tag) {
		t.Fatal("CMAC Verify accepted a tampered tag")
	}
}

// TestAsmMatchesReference runs checkPathsAgree over every length 0..600 of
// plaintext and associated data (two sweeps) and seeded random mixes, for
// all three key sizes.
func TestAsmMatchesReference(t *testing.T) {
	if !useAsm {
		t.Skip("no AES-NI path on this machine or build: nothing to compare")
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 10))
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, keyLen := range []int{32, 48, 64} {
		for n := 0; n <= maxDiffLen; n++ {
			key, nonce := fill(keyLen), fill(1+rng.IntN(40))
			checkPathsAgree(t, key, nonce, fill(rng.IntN(100)), fill(n), rng.IntN(1<<16))
			checkPathsAgree(t, key, nonce, fill(n), fill(rng.IntN(40)), rng.IntN(1<<16))
		}
		for range 200 {
			checkPathsAgree(t, fill(keyLen), fill(1+rng.IntN(maxDiffLen)), fill(rng.IntN(maxDiffLen+1)),
				fill(rng.IntN(maxDiffLen+1)), rng.IntN(1<<16))
		}
	}
}

// FuzzAsmMatchesReference is checkPathsAgree on fuzzed keys (all three
// sizes), nonces, associated data and plaintexts cut to 600 octets.
func FuzzAsmMatchesReference(f *testing.F) {
	f.Add([]byte("k"), uint8(0), []byte("0123456789abcdef"), []byte(""), []byte(""), uint16(0))
	f.Add([]byte("key"), uint8(1), []byte{1}, bytes.Repeat([]byte{4}, 84), bytes.Repeat([]byte{5}, 104), uint16(77))
	f.Add([]byte("k2"), uint8(2), bytes.Repeat([]byte{9}, 33), bytes.Repeat([]byte{2}, 228), bytes.Repeat([]byte{3}, 600), uint16(5000))
	f.Add([]byte{}, uint8(0), []byte("n"), []byte{7}, bytes.Repeat([]byte{1}, 129), uint16(3))
	f.Fuzz(func(t *testing.T, seed []byte, size uint8, nonce, ad, p []byte, flip uint16) {
		if !useAsm {
			t.Skip("no AES-NI path on this machine or build")
		}
		if len(nonce) == 0 {
			return
		}
		nonce, ad, p = nonce[:min(len(nonce), maxDiffLen)], ad[:min(len(ad), maxDiffLen)], p[:min(len(p), maxDiffLen)]
		checkPathsAgree(t, fuzzKey(seed, size), nonce, ad, p, int(flip))
	})
}
