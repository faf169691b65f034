package siv

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"
)

// NTS-like sizes (RFC 8915 §5.7): the AD is the NTP header plus the Unique
// Identifier and cookie fields (48..228 bytes); the plaintext is empty in a
// client request and carries up to 8 new cookies in a server reply.
var ntsSizes = []struct{ ad, p int }{
	{48, 0}, {132, 0}, {228, 0}, {48, 104}, {228, 416}, {228, 900},
}

func BenchmarkSeal(b *testing.B) {
	a := newAEAD(b, useAsm, make([]byte, 32))
	nonce := make([]byte, NonceSize)
	for _, s := range ntsSizes {
		b.Run(fmt.Sprintf("ad=%d/p=%d", s.ad, s.p), func(b *testing.B) {
			ad, p := make([]byte, s.ad), make([]byte, s.p)
			dst := make([]byte, 0, s.p+TagSize)
			b.SetBytes(int64(s.ad + s.p))
			b.ReportAllocs()
			for b.Loop() {
				a.Seal(dst, nonce, p, ad)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	a := newAEAD(b, useAsm, make([]byte, 32))
	nonce := make([]byte, NonceSize)
	for _, s := range ntsSizes {
		b.Run(fmt.Sprintf("ad=%d/p=%d", s.ad, s.p), func(b *testing.B) {
			ad := make([]byte, s.ad)
			ct := a.Seal(nil, nonce, make([]byte, s.p), ad)
			dst := make([]byte, 0, s.p)
			b.SetBytes(int64(s.ad + s.p))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Open(dst, nonce, ct, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCMAC covers the RFC 8573 case: a 48-byte NTP header, and 68 bytes
// (header plus one 20-byte extension field).
func BenchmarkCMAC(b *testing.B) {
	for _, keyLen := range []int{16, 32} {
		c, _ := NewCMAC(make([]byte, keyLen))
		for _, n := range []int{48, 68} {
			msg := make([]byte, n)
			b.Run(fmt.Sprintf("AES%d/Sum/%d", 8*keyLen, n), func(b *testing.B) {
				dst := make([]byte, 0, BlockSize)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					c.Sum(dst, msg)
				}
			})
			tag := c.Sum(nil, msg)
			b.Run(fmt.Sprintf("AES%d/Verify/%d", 8*keyLen, n), func(b *testing.B) {
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if !c.Verify(msg, tag) {
						b.Fatal("Verify failed")
					}
				}
			})
		}
	}
}

// BenchmarkSplitSeal measures the two halves of an NTS reply's seal with a
// Cipher: Prepare is what an NTS server does before it reads the clock for
// the transmit timestamp, Finish what remains after it (the CMAC of the
// 84-octet header and UID field, the last CMAC block, the CTR pass). The
// plaintext is 1 or 8 New Cookie fields of 108 octets.
func BenchmarkSplitSeal(b *testing.B) {
	c := new(Cipher)
	if err := c.SetKey(make([]byte, 32)); err != nil {
		b.Fatal(err)
	}
	nonce, ad := make([]byte, NonceSize), make([]byte, 84)
	for _, cookies := range []int{1, 8} {
		out := make([]byte, TagSize+cookies*108)
		b.Run(fmt.Sprintf("cookies=%d/Prepare", cookies), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.PrepareSeal(out, nonce)
			}
		})
		b.Run(fmt.Sprintf("cookies=%d/Finish", cookies), func(b *testing.B) {
			// One PrepareSeal, its state restored each round: timing a
			// second PrepareSeal with StopTimer would cost more than the
			// work measured.
			c.PrepareSeal(out, nonce)
			pre, chain, split := c.pre, c.chain, c.split
			b.ReportAllocs()
			for b.Loop() {
				c.pending, c.pre, c.chain, c.split = true, pre, chain, split
				c.FinishSeal(out, ad)
			}
		})
	}
}

// BenchmarkCTR compares the CTR pass of AES-SIV (ctrXOR: 8 counter blocks
// encrypted one Encrypt call each, then xored) with crypto/cipher's CTR
// over the same key, which crypto/aes speeds up with its own multi-block
// assembly. Issue 10 asked for the comparison on long inputs; NTS replies
// carry at most 8 cookies (about 900 octets).
func BenchmarkCTR(b *testing.B) {
	key := make([]byte, 32)
	var k Key
	if err := k.SetKey(key, true); err != nil {
		b.Fatal(err)
	}
	ref, err := aes.NewCipher(key[16:])
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{68, 108, 128, 900, 16 << 10} { // 68, 108: an NTS cookie, a New Cookie field
		src := make([]byte, n)
		dst := make([]byte, n)
		iv := make([]byte, BlockSize)
		b.Run(fmt.Sprintf("siv/%d", n), func(b *testing.B) {
			var ks scratchBlocks
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				k.ctrXOR(ks[:], block128{}, dst, src)
			}
		})
		b.Run(fmt.Sprintf("crypto-cipher/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				cipher.NewCTR(ref, iv).XORKeyStream(dst, src)
			}
		})
	}
}

// BenchmarkPaths runs the NTS-sized operations on the AES-NI path and on
// the crypto/aes reference in one binary, for the record in BENCHMARKS.md
// ("siv: AES-NI path"): key expansion (SetKey of a Key, both halves),
// Seal of a reply (84-octet AD, one 104-octet cookie field), Open of a
// request (228-octet AD, nothing encrypted), CMAC over an NTP header, and
// the CTR pass over a cookie and over 8 cookie fields.
func BenchmarkPaths(b *testing.B) {
	key := make([]byte, 32)
	nonce := make([]byte, NonceSize)
	for _, path := range []struct {
		name string
		asm  bool
	}{{"asm", true}, {"ref", false}} {
		if path.asm && !useAsm {
			continue
		}
		b.Run(path.name+"/SetKey", func(b *testing.B) {
			var k Key
			b.ReportAllocs()
			for b.Loop() {
				if err := k.setKey(key, true, path.asm); err != nil {
					b.Fatal(err)
				}
			}
		})
		a := newAEAD(b, path.asm, key)
		b.Run(path.name+"/Seal/ad=84/p=104", func(b *testing.B) {
			ad, p := make([]byte, 84), make([]byte, 104)
			dst := make([]byte, 0, len(p)+TagSize)
			b.ReportAllocs()
			for b.Loop() {
				a.Seal(dst, nonce, p, ad)
			}
		})
		b.Run(path.name+"/Open/ad=228/p=0", func(b *testing.B) {
			ad := make([]byte, 228)
			ct := a.Seal(nil, nonce, nil, ad)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Open(nil, nonce, ct, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
		mac, err := newCMAC(key[:16], path.asm)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(path.name+"/CMAC/48", func(b *testing.B) {
			msg, dst := make([]byte, 48), make([]byte, 0, BlockSize)
			b.ReportAllocs()
			for b.Loop() {
				mac.Sum(dst, msg)
			}
		})
		for _, n := range []int{68, 864} {
			b.Run(fmt.Sprintf("%s/CTR/%d", path.name, n), func(b *testing.B) {
				var ks scratchBlocks
				buf := make([]byte, n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					a.ctrXOR(ks[:], block128{}, buf, buf)
				}
			})
		}
	}
}
