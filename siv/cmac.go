package siv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// BlockSize is the AES block size, which is also the CMAC tag size and the
// SIV tag size (RFC 4493 §2.1, RFC 5297 §2.6).
const BlockSize = aes.BlockSize

// ErrKeySize is returned (wrapped) when a key has a length the algorithm does
// not define.
var ErrKeySize = errors.New("siv: invalid key size")

// CMAC is AES-CMAC (RFC 4493) under one key. It is safe for concurrent use.
// RFC 8573 uses it, unmodified and untruncated, as the NTP MAC.
type CMAC struct {
	block  cipher.Block
	k1, k2 [BlockSize]byte // subkeys of RFC 4493 §2.3
	// scratch holds *[BlockSize]byte blocks for Verify and Open, which have
	// no output region of their own to compute in. A per-key pool keeps the
	// calls allocation-free without package-level state.
	scratch sync.Pool
}

// NewCMAC returns AES-CMAC keyed with a 16-, 24- or 32-byte AES key.
func NewCMAC(key []byte) (*CMAC, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("%w: AES-CMAC key must be 16, 24 or 32 bytes, got %d", ErrKeySize, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("siv: %w", err)
	}
	c := new(CMAC)
	c.init(b)
	return c, nil
}

// init derives the subkeys (RFC 4493 §2.3): L = AES(K, 0), K1 = dbl(L),
// K2 = dbl(K1).
func (c *CMAC) init(b cipher.Block) {
	c.block = b
	var l [BlockSize]byte
	b.Encrypt(l[:], l[:])
	k1 := loadBlock(l[:]).dbl()
	k1.store(c.k1[:])
	k1.dbl().store(c.k2[:])
	c.scratch.New = func() any { return new([BlockSize]byte) }
}

// Size returns the MAC length, 16 bytes.
func (c *CMAC) Size() int { return BlockSize }

// Sum appends the 16-byte AES-CMAC of msg to dst and returns the result.
// It allocates nothing when dst has 16 bytes of spare capacity.
func (c *CMAC) Sum(dst, msg []byte) []byte {
	ret, out := sliceForAppend(dst, BlockSize)
	if anyOverlap(out, msg) {
		panic("siv: invalid buffer overlap")
	}
	c.sum(out, msg)
	return ret
}

// Verify reports, in time independent of the tag's content, whether tag is the
// AES-CMAC of msg. A tag of any length other than 16 bytes is rejected:
// RFC 8573 §4 uses the full 128-bit CMAC, and accepting truncations would
// make forgery easier.
func (c *CMAC) Verify(msg, tag []byte) bool {
	if len(tag) != BlockSize {
		return false
	}
	x := c.getScratch()
	defer c.putScratch(x)
	c.sum(x[:], msg)
	return subtle.ConstantTimeCompare(x[:], tag) == 1
}

func (c *CMAC) getScratch() *[BlockSize]byte { return c.scratch.Get().(*[BlockSize]byte) }

// putScratch wipes a block before returning it: it held a MAC or keystream.
func (c *CMAC) putScratch(x *[BlockSize]byte) {
	clear(x[:])
	c.scratch.Put(x)
}

// sum sets x (16 bytes) to CMAC(msg) following RFC 4493 §2.4.
func (c *CMAC) sum(x, msg []byte) {
	clear(x)
	// Every block but the last goes through the plain CBC chain; the last,
	// possibly partial or empty, block gets the subkey treatment.
	n := 0
	if len(msg) > 0 {
		n = (len(msg) - 1) / BlockSize * BlockSize
	}
	c.absorb(x, msg[:n])
	c.finish(x, msg[n:])
}

// absorb runs the CBC chain X = AES(K, X xor M_i) over whole blocks.
func (c *CMAC) absorb(x, blocks []byte) {
	for len(blocks) >= BlockSize {
		subtle.XORBytes(x, x, blocks[:BlockSize])
		c.block.Encrypt(x, x)
		blocks = blocks[BlockSize:]
	}
}

// finish processes the final block (RFC 4493 §2.4 steps 4 and 6): a complete
// block is xored with K1, a partial one is padded with 10* and xored with K2.
func (c *CMAC) finish(x, last []byte) {
	var m [BlockSize]byte
	copy(m[:], last)
	if len(last) == BlockSize {
		subtle.XORBytes(m[:], m[:], c.k1[:])
	} else {
		m[len(last)] = 0x80
		subtle.XORBytes(m[:], m[:], c.k2[:])
	}
	subtle.XORBytes(x, x, m[:])
	c.block.Encrypt(x, x)
}

// block128 is a 128-bit big-endian value held in registers, so that S2V's
// running value D never has to live in memory that escapes to the heap.
type block128 struct{ hi, lo uint64 }

func loadBlock(b []byte) block128 {
	return block128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

func (v block128) store(b []byte) {
	binary.BigEndian.PutUint64(b[:8], v.hi)
	binary.BigEndian.PutUint64(b[8:16], v.lo)
}

func (v block128) xor(w block128) block128 { return block128{v.hi ^ w.hi, v.lo ^ w.lo} }

// dbl multiplies by x in GF(2^128) with the polynomial x^128+x^7+x^2+x+1
// (RFC 4493 §2.3, RFC 5297 §2.3). The reduction is applied through a mask, not
// a branch, so the timing does not depend on the secret top bit.
func (v block128) dbl() block128 {
	carry := v.hi >> 63
	return block128{
		hi: v.hi<<1 | v.lo>>63,
		lo: v.lo<<1 ^ (0x87 & -carry),
	}
}
