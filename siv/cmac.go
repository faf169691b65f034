package siv

import (
	"crypto/aes"
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
	cmacKey
	scratch scratchPool // for Verify, which has no output to compute in
}

// cmacKey is the keyed part of AES-CMAC without any memory to compute in:
// every method takes its 16-byte state x from the caller, because on the
// crypto/aes path a buffer handed to cipher.Block.Encrypt (an interface
// method) escapes, so a stack array would be moved to the heap on every
// call.
type cmacKey struct {
	aes    aesKey
	k1, k2 block128 // subkeys of RFC 4493 §2.3
}

// scratchBlocks is the scratch memory of one Open or Verify: a CMAC state,
// or a batch of CTR keystream blocks (see ctrBatch).
type scratchBlocks [ctrBatch * BlockSize]byte

// scratchPool recycles scratchBlocks for one long-lived key (an RFC 8573
// key, the NTS cookie key): a per-key pool keeps Verify and Open free of
// allocations without package-level state. Keys that serve one request use
// Cipher instead, which carries its scratch inline and needs no pool.
type scratchPool struct{ p sync.Pool }

func (s *scratchPool) get() *scratchBlocks {
	if x, ok := s.p.Get().(*scratchBlocks); ok {
		return x
	}
	return new(scratchBlocks)
}

// put wipes the blocks before recycling them: they held a MAC or keystream.
func (s *scratchPool) put(x *scratchBlocks) {
	clear(x[:])
	s.p.Put(x)
}

// NewCMAC returns AES-CMAC keyed with a 16-, 24- or 32-byte AES key.
func NewCMAC(key []byte) (*CMAC, error) { return newCMAC(key, useAsm) }

// newCMAC is NewCMAC on the AES-NI path (asm) or the crypto/aes one.
func newCMAC(key []byte, asm bool) (*CMAC, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("%w: AES-CMAC key must be 16, 24 or 32 bytes, got %d", ErrKeySize, len(key))
	}
	c := new(CMAC)
	x := c.scratch.get()
	defer c.scratch.put(x)
	if err := c.init(key, asm, x[:BlockSize]); err != nil {
		return nil, err
	}
	return c, nil
}

// init expands key and derives the subkeys (RFC 4493 §2.3): L = AES(K, 0),
// K1 = dbl(L), K2 = dbl(K1). x is 16 bytes of scratch; it is left zeroed.
func (c *cmacKey) init(key []byte, asm bool, x []byte) error {
	if err := c.aes.set(key, asm); err != nil {
		return err
	}
	clear(x)
	c.aes.encrypt(x, x)
	c.k1 = loadBlock(x).dbl()
	c.k2 = c.k1.dbl()
	clear(x)
	return nil
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
	x := c.scratch.get()
	defer c.scratch.put(x)
	c.sum(x[:BlockSize], msg)
	return subtle.ConstantTimeCompare(x[:BlockSize], tag) == 1
}

// sum sets x (16 bytes) to CMAC(msg) following RFC 4493 §2.4.
func (c *cmacKey) sum(x, msg []byte) {
	clear(x)
	// Every block but the last goes through the plain CBC chain; the last,
	// possibly partial or empty, block gets the subkey treatment.
	n := lastStart(len(msg))
	c.absorb(x, msg[:n])
	c.finish(x, msg[n:])
}

// lastStart is where the final CMAC block of an n-octet message begins:
// the last complete or partial block, or 0 for an empty message.
func lastStart(n int) int {
	if n == 0 {
		return 0
	}
	return (n - 1) / BlockSize * BlockSize
}

// absorb runs the CBC chain X = AES(K, X xor M_i) over whole blocks.
func (c *cmacKey) absorb(x, blocks []byte) { c.aes.cbc(x, blocks) }

// finish processes the final block (RFC 4493 §2.4 steps 4 and 6): a complete
// block is xored with K1, a partial one is padded with 10* and xored with K2.
func (c *cmacKey) finish(x, last []byte) {
	var m [BlockSize]byte
	c.last(last).store(m[:])
	subtle.XORBytes(x, x, m[:]) // one 16-byte store: see aesKey.cbc
	c.aes.encrypt(x, x)
}

// last is the final block of finish before encryption: the complete block
// xored with K1, or the partial one padded with 10* and xored with K2.
func (c *cmacKey) last(last []byte) block128 {
	if len(last) < BlockSize {
		return padded(last).xor(c.k2)
	}
	return loadBlock(last).xor(c.k1)
}

// padded is b (shorter than a block) padded with 10* (RFC 4493 §2.4),
// read in place. Assembled in a stack buffer instead (copy, a 0x80 byte,
// then two 8-octet loads), the loads wait for the narrower stores before
// them to retire, as a store cannot be forwarded to a wider load: that
// stall cost more than the rest of S2V's bookkeeping in a profile of NTS
// replies (BENCHMARKS.md, "Store-forwarding stalls"). Lengths, never
// contents, decide the branches.
func padded(b []byte) block128 {
	if len(b) >= 8 {
		return block128{binary.BigEndian.Uint64(b[:8]), partialWord(b[8:])}
	}
	return block128{partialWord(b), 0}
}

// partialWord is b (under 8 octets) as the leading octets of a big-endian
// word, followed by the padding bit.
func partialWord(b []byte) uint64 {
	var v uint64
	for i, x := range b {
		v |= uint64(x) << (56 - 8*uint(i))
	}
	return v | 0x80<<(56-8*uint(len(b)))
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
