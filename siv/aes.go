package siv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
)

// aesKey is one expanded AES key. On amd64 with AES-NI (useAsm) it holds
// the round keys itself and aes_amd64.s runs the rounds: an NTS reply costs
// about 55 AES blocks, mostly in serial CMAC chains, and crypto/aes's
// per-block entry (cipher.Block interface call, overlap and FIPS checks)
// cost about as much as the rounds; crypto/aes.NewCipher also allocates
// each schedule on the heap. Elsewhere, or built with the purego tag, it
// wraps crypto/aes, which is the reference the tests compare against.
// Neither path looks anything up by a secret: both use the CPU's AES
// instructions, or crypto/aes's own constant-time fallback.
type aesKey struct {
	nr int          // rounds (10, 12, 14) when rk holds the key, else 0
	rk [240]byte    // encryption round keys, 16*(nr+1) bytes used
	b  cipher.Block // the crypto/aes path
}

// set expands a 16-, 24- or 32-byte key, with the AES-NI kernels when asm
// is true (the caller passes useAsm; tests pass false to get the
// reference), dropping whatever k held.
func (k *aesKey) set(key []byte, asm bool) error {
	*k = aesKey{}
	switch len(key) {
	case 16, 24, 32:
	default:
		return fmt.Errorf("siv: %w", aes.KeySizeError(len(key)))
	}
	if asm {
		k.nr = 6 + len(key)/4
		expandKeyAsm(k.nr, &key[0], &k.rk[0])
		return nil
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("siv: %w", err)
	}
	k.b = b
	return nil
}

// valid reports whether k holds a key.
func (k *aesKey) valid() bool { return k.nr != 0 || k.b != nil }

// encrypt encrypts the block src into dst (16 bytes each; may be the same).
func (k *aesKey) encrypt(dst, src []byte) {
	_, _ = dst[BlockSize-1], src[BlockSize-1]
	if k.nr != 0 {
		encryptAsm(k.nr, &k.rk[0], &dst[0], &src[0])
		return
	}
	k.b.Encrypt(dst, src)
}

// cbc runs the CBC-MAC chain x = AES(x xor m) over the whole blocks of
// blocks (its length a multiple of 16), x being 16 bytes.
func (k *aesKey) cbc(x, blocks []byte) {
	_ = x[BlockSize-1]
	if k.nr != 0 {
		if n := len(blocks) / BlockSize; n > 0 {
			cbcAsm(k.nr, &k.rk[0], &x[0], &blocks[0], n)
		}
		return
	}
	// subtle.XORBytes, not two 64-bit xors: it stores x in one 16-byte
	// write, which AES's 16-byte load can take straight from the store
	// buffer; two 8-byte stores make it wait (BENCHMARKS.md, "NTS per
	// request"; measured again for the AES-NI work: 283 -> 342 ns for Open
	// with 228 octets of AD).
	for len(blocks) >= BlockSize {
		subtle.XORBytes(x, x, blocks[:BlockSize])
		k.b.Encrypt(x, x)
		blocks = blocks[BlockSize:]
	}
}

// chain is one CBC-MAC chain for cbc3: its state and the whole blocks it
// has yet to absorb.
type chain struct {
	x      block128
	blocks []byte // a multiple of 16 octets
}

// cbc3 advances three independent chains together, on the AES-NI path
// only (k.nr != 0), and leaves their blocks empty. The kernel wants the
// longest chain first; the lengths are public, so sorting them leaks
// nothing.
func (k *aesKey) cbc3(c *[3]chain) {
	i0, i1, i2 := 0, 1, 2
	if len(c[i1].blocks) > len(c[i0].blocks) {
		i0, i1 = i1, i0
	}
	if len(c[i2].blocks) > len(c[i1].blocks) {
		i1, i2 = i2, i1
	}
	if len(c[i1].blocks) > len(c[i0].blocks) {
		i0, i1 = i1, i0
	}
	var st [3 * BlockSize]byte
	c[i0].x.store(st[0:])
	c[i1].x.store(st[BlockSize:])
	c[i2].x.store(st[2*BlockSize:])
	cbc3Asm(k.nr, &k.rk[0], &st[0],
		firstByte(c[i0].blocks), firstByte(c[i1].blocks), firstByte(c[i2].blocks),
		len(c[i0].blocks)/BlockSize, len(c[i1].blocks)/BlockSize, len(c[i2].blocks)/BlockSize)
	c[i0].x, c[i1].x, c[i2].x = loadBlock(st[0:]), loadBlock(st[BlockSize:]), loadBlock(st[2*BlockSize:])
	clear(st[:])
	for i := range c {
		c[i].blocks = nil
	}
}

// firstByte is &b[0], or nil for an empty b (which the kernels never read).
func firstByte(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}
