package siv

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"
	"time"
)

func newCipher(t testing.TB, asm bool, key []byte) *Cipher {
	t.Helper()
	c := new(Cipher)
	if err := c.setKey(key, asm); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCipherWycheproof runs the RFC 5116 vectors through Cipher exactly as
// TestWycheproofAEAD runs them through AEAD: Seal (which is PrepareSeal
// plus FinishSeal), Open, in place, at unaligned offsets.
func TestCipherWycheproof(t *testing.T) { forPaths(t, testCipherWycheproof) }

func testCipherWycheproof(t *testing.T, asm bool) {
	var c Cipher
	for _, tc := range loadWycheproof(t, "aead_aes_siv_cmac_test.json") {
		t.Run(fmt.Sprint(tc.TcID), func(t *testing.T) {
			if err := c.setKey(tc.Key, asm); err != nil {
				t.Fatal(err)
			}
			z := append(bytes.Clone(tc.Tag), tc.CT...)
			for _, off := range offsets {
				checkAEADVector(t, &c, tc, z, off)
			}
		})
	}
}

// TestCipherMatchesAEAD compares Cipher with AEAD over random keys, nonces,
// associated data and plaintexts around the block boundaries, in one call
// and split with the associated data supplied only at FinishSeal.
func TestCipherMatchesAEAD(t *testing.T) { forPaths(t, testCipherMatchesAEAD) }

func testCipherMatchesAEAD(t *testing.T, asm bool) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	var c Cipher
	for range 500 {
		key := fill([]int{32, 48, 64}[rng.IntN(3)])
		a := newAEAD(t, asm, key)
		if err := c.setKey(key, asm); err != nil {
			t.Fatal(err)
		}
		nonce, ad := fill(1+rng.IntN(40)), fill(rng.IntN(300))
		p := fill([]int{0, 1, 15, 16, 17, 31, 32, 33, 68, 127, 128, 129, 864, 900}[rng.IntN(14)])
		want := a.Seal(nil, nonce, p, ad)
		if got := c.Seal(nil, nonce, p, ad); !bytes.Equal(got, want) {
			t.Fatalf("len(p) %d: Cipher.Seal = %x, AEAD.Seal = %x", len(p), got, want)
		}

		// Split: the AD does not exist yet at PrepareSeal, and the nonce
		// is gone by FinishSeal.
		out := append(make([]byte, TagSize), p...)
		n := bytes.Clone(nonce)
		c.PrepareSeal(out, n)
		clear(n)
		c.FinishSeal(out, ad)
		if !bytes.Equal(out, want) {
			t.Fatalf("len(p) %d: split seal = %x, want %x", len(p), out, want)
		}
		if pt, err := c.Open(nil, nonce, want, ad); err != nil || !bytes.Equal(pt, p) {
			t.Fatalf("len(p) %d: Cipher.Open = %x, %v", len(p), pt, err)
		}
		if len(ad) > 0 {
			bad := bytes.Clone(ad)
			bad[rng.IntN(len(bad))] ^= 1 << rng.IntN(8)
			if _, err := c.Open(nil, nonce, want, bad); !errors.Is(err, ErrOpen) {
				t.Fatalf("opened with altered AD: %v", err)
			}
		}
	}
}

// The associated data enters at FinishSeal only: preparing once and
// finishing with a different AD gives that AD's ciphertext. This is what
// lets an NTS server read the clock between the two.
func TestCipherLateAD(t *testing.T) { forPaths(t, testCipherLateAD) }

func testCipherLateAD(t *testing.T, asm bool) {
	key := bytes.Repeat([]byte{5}, 32)
	a, c := newAEAD(t, asm, key), newCipher(t, asm, key)
	nonce, p := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 864)
	header := bytes.Repeat([]byte{3}, 84)
	out := append(make([]byte, TagSize), p...)
	c.PrepareSeal(out, nonce)
	header[47] = 0x77 // as the transmit timestamp is written after PrepareSeal
	c.FinishSeal(out, header)
	if want := a.Seal(nil, nonce, p, header); !bytes.Equal(out, want) {
		t.Fatal("split seal does not cover the AD as it is at FinishSeal")
	}
}

// K2 is expanded only for content to encrypt or decrypt: a tag-only
// ciphertext (an NTS request without encrypted fields) is opened with K1
// alone, and the copy of K2 is wiped once expanded.
func TestCipherExpandsCTRKeyOnlyWhenNeeded(t *testing.T) {
	forPaths(t, testCipherExpandsCTRKeyOnlyWhenNeeded)
}

func testCipherExpandsCTRKeyOnlyWhenNeeded(t *testing.T, asm bool) {
	key := bytes.Repeat([]byte{9}, 32)
	a := newAEAD(t, asm, key)
	nonce, ad := bytes.Repeat([]byte{1}, 16), []byte("header")
	c := newCipher(t, asm, key)
	if _, err := c.Open(nil, nonce, a.Seal(nil, nonce, nil, ad), ad); err != nil {
		t.Fatal(err)
	}
	if c.ctr.valid() || c.k2Len != 16 || bytes.Equal(c.k2[:16], make([]byte, 16)) {
		t.Fatal("K2 was expanded (or lost) for a tag-only ciphertext")
	}
	if _, err := c.Open(nil, nonce, a.Seal(nil, nonce, []byte("x"), ad), ad); err != nil {
		t.Fatal(err)
	}
	if !c.ctr.valid() || c.k2 != [32]byte{} {
		t.Fatal("K2 not expanded for content, or its copy not wiped")
	}
}

// Reset wipes everything, and a Cipher without a key refuses to work
// instead of computing with zero subkeys.
func TestCipherResetAndMisuse(t *testing.T) { forPaths(t, testCipherResetAndMisuse) }

func testCipherResetAndMisuse(t *testing.T, asm bool) {
	c := newCipher(t, asm, make([]byte, 32))
	out := make([]byte, TagSize+20)
	c.PrepareSeal(out, []byte{1})
	c.Reset()
	if *c != (Cipher{}) {
		t.Fatal("Reset left state behind")
	}
	nonce := []byte{1}
	assertPanics(t, "Seal without a key", func() { c.Seal(nil, nonce, nil, nil) })
	assertPanics(t, "Open without a key", func() { _, _ = c.Open(nil, nonce, make([]byte, 16), nil) })
	assertPanics(t, "FinishSeal without PrepareSeal", func() { c.FinishSeal(out, nil) })

	c = newCipher(t, asm, make([]byte, 32))
	c.PrepareSeal(out, nonce)
	assertPanics(t, "FinishSeal of another length", func() { c.FinishSeal(out[:20], nil) })
	c.PrepareSeal(out, nonce)
	assertPanics(t, "FinishSeal with AD in the output", func() { c.FinishSeal(out, out[20:]) })
	assertPanics(t, "PrepareSeal with the nonce in the output", func() { c.PrepareSeal(out, out[:1]) })
	assertPanics(t, "PrepareSeal without room for V", func() { c.PrepareSeal(out[:15], nonce) })
	assertPanics(t, "Seal with shifted plaintext", func() { c.Seal(out[:0], nonce, out[8:20], nil) })

	for n := range 70 {
		err := c.setKey(make([]byte, n), asm)
		if ok := n == 32 || n == 48 || n == 64; (err == nil) != ok || (!ok && !errors.Is(err, ErrKeySize)) {
			t.Errorf("SetKey(%d bytes): %v", n, err)
		}
	}
	if c.setKey(make([]byte, 31), asm) == nil || c.mac.aes.valid() {
		t.Error("a failed SetKey kept the old key")
	}
}

// A Cipher in reusable memory allocates only the AES key schedules that
// crypto/aes.NewCipher makes: one to open a tag-only ciphertext, two to
// seal. Anything more would be our own allocation. On the AES-NI path the
// schedules live inside the Cipher, so nothing is allocated at all.
func TestCipherAllocs(t *testing.T) { forPaths(t, testCipherAllocs) }

func testCipherAllocs(t *testing.T, asm bool) {
	key := bytes.Repeat([]byte{4}, 32)
	nonce, ad := make([]byte, 16), make([]byte, 84)
	tagOnly := newAEAD(t, asm, key).Seal(nil, nonce, nil, ad)
	c := new(Cipher)
	open := testing.AllocsPerRun(100, func() {
		if c.setKey(key, asm) != nil {
			t.Fatal("SetKey")
		}
		if _, err := c.Open(nil, nonce, tagOnly, ad); err != nil {
			t.Fatal(err)
		}
	})
	out := make([]byte, TagSize+864)
	seal := testing.AllocsPerRun(100, func() {
		if c.setKey(key, asm) != nil {
			t.Fatal("SetKey")
		}
		c.PrepareSeal(out, nonce)
		c.FinishSeal(out, ad)
	})
	wantOpen, wantSeal := 1.0, 2.0
	if asm {
		wantOpen, wantSeal = 0, 0
	}
	if open != wantOpen || seal != wantSeal {
		t.Errorf("allocations: SetKey+Open %v (want %v), SetKey+PrepareSeal+FinishSeal %v (want %v)", open, wantOpen, seal, wantSeal)
	}
}

// TestCTRCounterCarries: the CTR counter is V with two bits cleared, then
// incremented as a 128-bit number, so a carry into a cleared bit stays
// (RFC 5297 §2.5). Every CTR path (batched with scratch, one block at a
// time, in place with a partial last block) must agree with a plain
// reference, also for counters whose increments carry into bit 31.
func TestCTRCounterCarries(t *testing.T) { forPaths(t, testCTRCounterCarries) }

func testCTRCounterCarries(t *testing.T, asm bool) {
	a := newAEAD(t, asm, bytes.Repeat([]byte{6}, 32))
	for _, v := range []block128{
		{1, 0x7fffffff_7ffffffd}, // carries into the cleared bit 31
		{2, 0xffffffff_fffffffa}, // both bits set in V: cleared, then the carry
		{3, 0x12345678_00000000},
	} {
		for _, n := range []int{1, 15, 16, 17, 100, 200, 260} {
			src := bytes.Repeat([]byte{0xa5}, n)
			want := make([]byte, n)
			ctr := block128{v.hi, v.lo &^ (1<<31 | 1<<63)}
			var ks [BlockSize]byte
			for i := 0; i < n; i += BlockSize {
				ctr.store(ks[:])
				var carry uint64
				ctr.lo, carry = bits.Add64(ctr.lo, 1, 0)
				ctr.hi += carry
				a.ctr.encrypt(ks[:], ks[:])
				for j := i; j < min(n, i+BlockSize); j++ {
					want[j] = src[j] ^ ks[j-i]
				}
			}
			batched, single := make([]byte, n), make([]byte, n)
			a.xorKeyStream(make([]byte, ctrBatch*BlockSize), v, batched, src)
			a.xorKeyStream(make([]byte, BlockSize), v, single, src)
			inPlace := bytes.Clone(src)
			a.encryptInPlace(make([]byte, BlockSize), v, inPlace)
			if !bytes.Equal(batched, want) || !bytes.Equal(single, want) || !bytes.Equal(inPlace, want) {
				t.Errorf("V %x, %d bytes: batched %v, single %v, in place %v agree with the reference",
					v, n, bytes.Equal(batched, want), bytes.Equal(single, want), bytes.Equal(inPlace, want))
			}
		}
	}
}
