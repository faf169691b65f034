package siv

import (
	"bytes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

func newAEAD(t testing.TB, asm bool, key []byte) *AEAD {
	t.Helper()
	a, err := newSIV(key, asm)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// RFC 5297 A.1: deterministic encryption with one AD component, including
// the intermediate CMAC(zero) that New caches.
func TestRFC5297A1(t *testing.T) { forPaths(t, testRFC5297A1) }

func testRFC5297A1(t *testing.T, asm bool) {
	a := newAEAD(t, asm, unhex(t, "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"))
	ad := unhex(t, "101112131415161718191a1b1c1d1e1f2021222324252627")
	p := unhex(t, "112233445566778899aabbccddee")
	want := unhex(t, "85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c")

	var d0 [16]byte
	a.d0.store(d0[:])
	if got := hex.EncodeToString(d0[:]); got != "0e04dfafc1efbf040140582859bf073a" {
		t.Errorf("CMAC(zero) = %s", got)
	}
	checkComponents(t, a, p, want, ad)
}

// RFC 5297 A.2: two AD components and a nonce, each its own S2V string.
func TestRFC5297A2(t *testing.T) { forPaths(t, testRFC5297A2) }

func testRFC5297A2(t *testing.T, asm bool) {
	a := newAEAD(t, asm, unhex(t, "7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f"))
	ad1 := unhex(t, "00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100")
	ad2 := unhex(t, "102030405060708090a0")
	nonce := unhex(t, "09f911029d74e35bd84156c5635688c0")
	p := unhex(t, "7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67205349562d414553")
	want := unhex(t, "7bdb6e3b432667eb06f4d14bff2fbd0fcb900f2fddbe404326601965c889bf17"+
		"dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d")
	checkComponents(t, a, p, want, ad1, ad2, nonce)

	// The components are separate strings: joining them is a different
	// vector and must not open.
	joined := append(append(bytes.Clone(ad1), ad2...), nonce...)
	if _, err := a.OpenComponents(nil, want, joined); !errors.Is(err, ErrOpen) {
		t.Errorf("opened with the components concatenated: %v", err)
	}
	if _, err := a.OpenComponents(nil, want, ad2, ad1, nonce); !errors.Is(err, ErrOpen) {
		t.Errorf("opened with the components reordered: %v", err)
	}
}

// checkComponents seals and opens at several offsets and in place and checks
// the exact output.
func checkComponents(t *testing.T, a *AEAD, p, want []byte, comps ...[]byte) {
	t.Helper()
	for _, off := range offsets {
		sc := make([][]byte, len(comps))
		for i, c := range comps {
			sc[i] = shifted(c, off)
		}
		got := a.SealComponents(shifted(nil, off), shifted(p, off), sc...)
		if !bytes.Equal(got, want) {
			t.Errorf("offset %d: SealComponents = %x, want %x", off, got, want)
		}
		pt, err := a.OpenComponents(shifted(nil, off), shifted(want, off), sc...)
		if err != nil || !bytes.Equal(pt, p) {
			t.Errorf("offset %d: OpenComponents = %x, %v", off, pt, err)
		}
		buf := shifted(p, off)
		got = a.SealComponents(buf[:0], buf, sc...)
		if !bytes.Equal(got, want) || &got[0] != &buf[:1][0] {
			t.Errorf("offset %d: in-place SealComponents = %x", off, got)
		}
		pt, err = a.OpenComponents(got[:0], got, sc...)
		if err != nil || !bytes.Equal(pt, p) {
			t.Errorf("offset %d: in-place OpenComponents = %x, %v", off, pt, err)
		}
	}
}

// TestWycheproofAEAD runs aead_aes_siv_cmac_test.json through the RFC 5116
// interface: S2V(K1, aad, iv, msg), output tag ‖ ct. Empty aad is a present,
// empty component; the vectors with aad "" prove it.
func TestWycheproofAEAD(t *testing.T) { forPaths(t, testWycheproofAEAD) }

func testWycheproofAEAD(t *testing.T, asm bool) {
	emptyAAD := 0
	for _, tc := range loadWycheproof(t, "aead_aes_siv_cmac_test.json") {
		if len(tc.AAD) == 0 {
			emptyAAD++
		}
		t.Run(fmt.Sprint(tc.TcID), func(t *testing.T) {
			a := newAEAD(t, asm, tc.Key)
			z := append(bytes.Clone(tc.Tag), tc.CT...)
			for _, off := range offsets {
				checkAEADVector(t, a, tc, z, off)
			}
		})
	}
	if emptyAAD == 0 {
		t.Fatal("no vector with empty associated data")
	}
}

func checkAEADVector(t *testing.T, a cipher.AEAD, tc wycheTest, z []byte, off int) {
	valid := tc.Result == "valid"
	iv, aad := shifted(tc.IV, off), shifted(tc.AAD, off)
	sealed := a.Seal(shifted(nil, off), iv, shifted(tc.Msg, off), aad)
	if bytes.Equal(sealed, z) != valid {
		t.Errorf("offset %d: Seal = %x, file has %x (%s)", off, sealed, z, tc.Result)
	}
	pt, err := a.Open(shifted(nil, off), iv, shifted(z, off), aad)
	checkOpen(t, off, "", pt, err, tc.Msg, valid)

	buf := shifted(z, off)
	pt, err = a.Open(buf[:0], iv, buf, aad)
	checkOpen(t, off, "in place ", pt, err, tc.Msg, valid)
	if !valid && !bytes.Equal(buf[:len(buf)-TagSize], make([]byte, len(buf)-TagSize)) {
		t.Errorf("offset %d: failed in-place Open left %x in the output region", off, buf[:len(buf)-TagSize])
	}
	if valid {
		in := shifted(tc.Msg, off)
		if got := a.Seal(in[:0], iv, in, aad); !bytes.Equal(got, z) {
			t.Errorf("offset %d: in-place Seal = %x", off, got)
		}
	}
}

func checkOpen(t *testing.T, off int, how string, pt []byte, err error, msg []byte, valid bool) {
	t.Helper()
	switch {
	case valid && (err != nil || !bytes.Equal(pt, msg)):
		t.Errorf("offset %d: %sOpen = %x, %v; want %x", off, how, pt, err, msg)
	case !valid && (err == nil || !errors.Is(err, ErrOpen) || pt != nil):
		t.Errorf("offset %d: %sOpen of an invalid vector = %x, %v", off, how, pt, err)
	}
}

// TestWycheproofDeterministic runs aes_siv_cmac_test.json: SIV with exactly
// one AD component (possibly empty) and no nonce; ct is V ‖ C.
func TestWycheproofDeterministic(t *testing.T) { forPaths(t, testWycheproofDeterministic) }

func testWycheproofDeterministic(t *testing.T, asm bool) {
	for _, tc := range loadWycheproof(t, "aes_siv_cmac_test.json") {
		t.Run(fmt.Sprint(tc.TcID), func(t *testing.T) {
			a, err := newSIV(tc.Key, asm)
			if err != nil {
				if tc.Result == "valid" || !errors.Is(err, ErrKeySize) {
					t.Fatalf("New(%d-byte key): %v", len(tc.Key), err)
				}
				return
			}
			valid := tc.Result == "valid"
			for _, off := range offsets {
				aad := shifted(tc.AAD, off)
				got := a.SealComponents(shifted(nil, off), shifted(tc.Msg, off), aad)
				if bytes.Equal(got, tc.CT) != valid {
					t.Errorf("offset %d: Seal = %x, file has %x (%s)", off, got, tc.CT, tc.Result)
				}
				pt, err := a.OpenComponents(shifted(nil, off), shifted(tc.CT, off), aad)
				checkOpen(t, off, "", pt, err, tc.Msg, valid)
				buf := shifted(tc.CT, off)
				pt, err = a.OpenComponents(buf[:0], buf, aad)
				checkOpen(t, off, "in place ", pt, err, tc.Msg, valid)
			}
		})
	}
}

func TestNewKeySizes(t *testing.T) { forPaths(t, testNewKeySizes) }

func testNewKeySizes(t *testing.T, asm bool) {
	for n := range 70 {
		a, err := newSIV(make([]byte, n), asm)
		ok := n == 32 || n == 48 || n == 64
		if (err == nil) != ok || (!ok && !errors.Is(err, ErrKeySize)) {
			t.Errorf("New(%d bytes): %v", n, err)
		}
		if ok && (a.NonceSize() != 16 || a.Overhead() != 16) {
			t.Errorf("New(%d bytes): NonceSize %d Overhead %d", n, a.NonceSize(), a.Overhead())
		}
	}
}

// Nonces of every length from 1 byte authenticate, and a nonce is bound by
// its length as well as its bytes.
func TestNonceLengths(t *testing.T) { forPaths(t, testNonceLengths) }

func testNonceLengths(t *testing.T, asm bool) {
	a := newAEAD(t, asm, make([]byte, 32))
	p := []byte("encrypted extension fields")
	ad := []byte("ntp header and extension fields")
	nonce := bytes.Repeat([]byte{0xa5}, 40)
	for n := 1; n <= len(nonce); n++ {
		ct := a.Seal(nil, nonce[:n], p, ad)
		if pt, err := a.Open(nil, nonce[:n], ct, ad); err != nil || !bytes.Equal(pt, p) {
			t.Errorf("nonce %d bytes: Open = %q, %v", n, pt, err)
		}
		if n > 1 {
			if _, err := a.Open(nil, nonce[:n-1], ct, ad); !errors.Is(err, ErrOpen) {
				t.Errorf("nonce %d bytes opened with its %d-byte prefix", n, n-1)
			}
		}
	}
	if _, err := a.Open(nil, nil, a.Seal(nil, nonce, p, ad), ad); !errors.Is(err, ErrNonceSize) {
		t.Errorf("Open with empty nonce: %v", err)
	}
	assertPanics(t, "Seal with empty nonce", func() { a.Seal(nil, nil, p, ad) })
}

// Empty AD is a component: sealing with AD "" differs from sealing with no
// AD component at all, and the RFC 5116 form equals the explicit vector.
func TestEmptyADIsAComponent(t *testing.T) { forPaths(t, testEmptyADIsAComponent) }

func testEmptyADIsAComponent(t *testing.T, asm bool) {
	a := newAEAD(t, asm, bytes.Repeat([]byte{7}, 32))
	nonce := bytes.Repeat([]byte{1}, 16)
	p := []byte("p")
	withEmpty := a.Seal(nil, nonce, p, nil)
	if explicit := a.SealComponents(nil, p, []byte{}, nonce); !bytes.Equal(withEmpty, explicit) {
		t.Fatalf("Seal(ad=nil) = %x, SealComponents(\"\", nonce) = %x", withEmpty, explicit)
	}
	if noAD := a.SealComponents(nil, p, nonce); bytes.Equal(withEmpty, noAD) {
		t.Fatal("empty AD was dropped from the S2V vector")
	}
	if _, err := a.OpenComponents(nil, withEmpty, nonce); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened without the empty AD component: %v", err)
	}
}

func TestShortCiphertext(t *testing.T) { forPaths(t, testShortCiphertext) }

func testShortCiphertext(t *testing.T, asm bool) {
	a := newAEAD(t, asm, make([]byte, 32))
	for n := range TagSize {
		if pt, err := a.Open(nil, []byte{1}, make([]byte, n), nil); pt != nil || !errors.Is(err, ErrOpen) {
			t.Errorf("Open(%d bytes) = %x, %v", n, pt, err)
		}
	}
}

func TestComponentLimit(t *testing.T) { forPaths(t, testComponentLimit) }

func testComponentLimit(t *testing.T, asm bool) {
	a := newAEAD(t, asm, make([]byte, 32))
	comps := make([][]byte, MaxComponents+1)
	assertPanics(t, "SealComponents(127)", func() { a.SealComponents(nil, nil, comps...) })
	if _, err := a.OpenComponents(nil, make([]byte, 16), comps...); !errors.Is(err, ErrComponents) {
		t.Errorf("OpenComponents(127): %v", err)
	}
	ct := a.SealComponents(nil, []byte("x"), comps[:MaxComponents]...)
	if pt, err := a.OpenComponents(nil, ct, comps[:MaxComponents]...); err != nil || string(pt) != "x" {
		t.Errorf("126 components: %q, %v", pt, err)
	}
}

// Buffers that alias in ways cipher.AEAD forbids are refused loudly instead
// of producing a wrong tag.
func TestOverlapPanics(t *testing.T) { forPaths(t, testOverlapPanics) }

func testOverlapPanics(t *testing.T, asm bool) {
	a := newAEAD(t, asm, make([]byte, 32))
	nonce := make([]byte, 16)
	buf := make([]byte, 200)
	assertPanics(t, "Seal with shifted plaintext", func() { a.Seal(buf[:0], nonce, buf[8:40], nil) })
	assertPanics(t, "Seal with AD in the output", func() { a.Seal(buf[:0], nonce, buf[100:120], buf[10:20]) })
	assertPanics(t, "Seal with nonce in the output", func() { a.Seal(buf[:0], buf[4:20], buf[100:120], nil) })
	assertPanics(t, "Open with shifted ciphertext", func() { _, _ = a.Open(buf[:0], nonce, buf[16:64], nil) })
	assertPanics(t, "Open with AD in the output", func() { _, _ = a.Open(buf[:0], nonce, buf[100:140], buf[0:8]) })
}

func assertPanics(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

// Seal appends: a prefix of dst is kept and the output follows it.
func TestSealOpenAppend(t *testing.T) { forPaths(t, testSealOpenAppend) }

func testSealOpenAppend(t *testing.T, asm bool) {
	a := newAEAD(t, asm, make([]byte, 64))
	nonce := []byte("0123456789abcdef")
	ct := a.Seal([]byte("hdr"), nonce, []byte("plaintext"), []byte("ad"))
	if string(ct[:3]) != "hdr" || len(ct) != 3+16+9 {
		t.Fatalf("Seal = %q", ct)
	}
	pt, err := a.Open([]byte("x"), nonce, ct[3:], []byte("ad"))
	if err != nil || string(pt) != "xplaintext" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
}

func TestZeroAllocs(t *testing.T) { forPaths(t, testZeroAllocs) }

func testZeroAllocs(t *testing.T, asm bool) {
	a := newAEAD(t, asm, make([]byte, 32))
	nonce, ad, p := make([]byte, 16), make([]byte, 228), make([]byte, 900)
	ct := a.Seal(nil, nonce, p, ad)
	dst := make([]byte, 0, len(ct))
	if n := testing.AllocsPerRun(50, func() { a.Seal(dst, nonce, p, ad) }); n != 0 {
		t.Errorf("Seal allocates %v times", n)
	}
	if n := testing.AllocsPerRun(50, func() { a.SealComponents(dst, p, ad, ad, nonce) }); n != 0 {
		t.Errorf("SealComponents allocates %v times", n)
	}
	if raceEnabled {
		return // sync.Pool drops items at random under the race detector
	}
	if n := testing.AllocsPerRun(50, func() { _, _ = a.Open(dst, nonce, ct, ad) }); n != 0 {
		t.Errorf("Open allocates %v times", n)
	}
}

// One AEAD and one CMAC are shared by many goroutines (the NTS cookie key,
// an RFC 8573 key): every result must be right under -race.
func TestConcurrentUse(t *testing.T) { forPaths(t, testConcurrentUse) }

func testConcurrentUse(t *testing.T, asm bool) {
	a := newAEAD(t, asm, bytes.Repeat([]byte{3}, 32))
	c, _ := newCMAC(bytes.Repeat([]byte{4}, 16), asm)
	nonce, ad := make([]byte, 16), []byte("ad")
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 200 {
				p := bytes.Repeat([]byte{byte(g)}, i%40)
				ct := a.Seal(nil, nonce, p, ad)
				pt, oerr := a.Open(nil, nonce, ct, ad)
				tag := c.Sum(nil, p)
				if oerr != nil || !bytes.Equal(pt, p) || !c.Verify(p, tag) {
					err = fmt.Errorf("goroutine %d, round %d: %x, %v", g, i, pt, oerr)
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
