package siv

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// TagSize is the length of the synthetic IV that prefixes every
	// ciphertext (RFC 5297 §2.6).
	TagSize = BlockSize

	// NonceSize is the nonce length this package recommends and NTS clients
	// use: RFC 5297 §3 asks for at least 128 bits of a random nonce. Seal and
	// Open accept any length from 1 octet (N_MIN, RFC 5297 §6.1) up; there is
	// no N_MAX.
	NonceSize = 16

	// MaxComponents is the largest number of associated-data components,
	// nonce included, that one call accepts: RFC 5297 §2.6 and §2.7 allow
	// "not greater than 126" because the S2V security bound of §7 needs fewer
	// than 128 strings, the plaintext being the last.
	MaxComponents = 126
)

var (
	// ErrOpen is returned when a ciphertext does not authenticate.
	ErrOpen = errors.New("siv: message authentication failed")
	// ErrNonceSize is returned by Open for an empty nonce (N_MIN is one
	// octet, RFC 5297 §6.1).
	ErrNonceSize = errors.New("siv: nonce must be at least 1 byte")
	// ErrComponents is returned by OpenComponents for more than
	// MaxComponents associated-data components.
	ErrComponents = errors.New("siv: too many associated data components")
)

// AEAD is AES-SIV-CMAC (RFC 5297) with the cipher.AEAD method set. It is
// safe for concurrent use, and meant for keys that live long (the NTS
// cookie key, a client's session keys); a key that serves one request is
// cheaper as a Cipher.
type AEAD struct {
	sivKey
	scratch scratchPool // for Open, which has no V slot to compute in
}

// sivKey is the keyed part of AES-SIV-CMAC without any memory to compute
// in: every method takes its scratch from the caller (see cmacKey).
type sivKey struct {
	mac cmacKey // S2V key K1
	ctr aesKey  // CTR key K2; a Cipher expands it only when needed
	asm bool    // the AES-NI path (useAsm), or crypto/aes
	// d0 caches CMAC(K1, <zero>), the first step of every S2V (RFC 5297 §2.4;
	// §5 allows caching invariant parts).
	d0 block128
}

var _ cipher.AEAD = (*AEAD)(nil)

// New returns AES-SIV-CMAC keyed with K = K1 ‖ K2: a 32-byte key is
// AEAD_AES_SIV_CMAC_256 (NTS AEAD id 15), 48 and 64 bytes are the -384 and
// -512 variants (RFC 5297 §6.1–§6.3).
func New(key []byte) (*AEAD, error) { return newSIV(key, useAsm) }

// newSIV is New on the AES-NI path (asm) or the crypto/aes one.
func newSIV(key []byte, asm bool) (*AEAD, error) {
	if err := checkKeySize(key); err != nil {
		return nil, err
	}
	a := new(AEAD)
	x := a.scratch.get()
	defer a.scratch.put(x)
	half := len(key) / 2
	if err := a.init(key[:half], asm, x[:BlockSize]); err != nil {
		return nil, err
	}
	if err := a.ctr.set(key[half:], asm); err != nil {
		return nil, err
	}
	return a, nil
}

func checkKeySize(key []byte) error {
	switch len(key) {
	case 32, 48, 64:
		return nil
	}
	return fmt.Errorf("%w: AES-SIV-CMAC key must be 32, 48 or 64 bytes, got %d", ErrKeySize, len(key))
}

// init keys S2V with K1 and computes d0, using x (16 bytes) as scratch.
func (k *sivKey) init(k1 []byte, asm bool, x []byte) error {
	k.asm = asm
	if err := k.mac.init(k1, asm, x); err != nil {
		return err
	}
	var zero [BlockSize]byte
	k.mac.sum(x, zero[:])
	k.d0 = loadBlock(x)
	clear(x)
	return nil
}

// NonceSize returns the recommended nonce length, 16 bytes; any length of at
// least 1 byte is accepted.
func (a *AEAD) NonceSize() int { return NonceSize }

// Overhead returns the length of the synthetic IV, 16 bytes.
func (a *AEAD) Overhead() int { return TagSize }

// Seal encrypts and authenticates plaintext with S2V over (additionalData,
// nonce, plaintext) and appends V ‖ C to dst. Empty additionalData is still
// a component of the vector (RFC 5297 §3, RFC 5116 §2.1). To encrypt in place
// use plaintext[:0] as dst; dst's spare capacity must otherwise not overlap
// plaintext, and neither nonce nor additionalData may overlap the output.
// Seal panics if nonce is empty.
func (a *AEAD) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) == 0 {
		panic("siv: empty nonce")
	}
	comps := [2][]byte{additionalData, nonce}
	return a.seal(dst, plaintext, comps[:])
}

// Open authenticates and decrypts a V ‖ C ciphertext produced by Seal and
// appends the plaintext to dst. On failure it returns ErrOpen and leaves the
// output region zeroed, so no unauthenticated plaintext is ever visible. To
// decrypt in place use ciphertext[:0] as dst.
func (a *AEAD) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) == 0 {
		return nil, ErrNonceSize
	}
	comps := [2][]byte{additionalData, nonce}
	x := a.scratch.get()
	defer a.scratch.put(x)
	return a.open(dst, ciphertext, comps[:], x[:])
}

// SealComponents is SIV-ENCRYPT of RFC 5297 §2.6 with an explicit
// associated-data vector: each component is authenticated separately, in
// order, and a nonce, if any, must be the last one (§3). With no components it
// is deterministic encryption of plaintext alone (§4). It panics with more
// than MaxComponents components.
func (a *AEAD) SealComponents(dst, plaintext []byte, components ...[]byte) []byte {
	if len(components) > MaxComponents {
		panic("siv: too many associated data components")
	}
	return a.seal(dst, plaintext, components)
}

// OpenComponents is SIV-DECRYPT of RFC 5297 §2.7, the inverse of
// SealComponents.
func (a *AEAD) OpenComponents(dst, ciphertext []byte, components ...[]byte) ([]byte, error) {
	if len(components) > MaxComponents {
		return nil, ErrComponents
	}
	x := a.scratch.get()
	defer a.scratch.put(x)
	return a.open(dst, ciphertext, components, x[:])
}

// seal writes V ‖ C without any scratch memory of its own: the plaintext is
// first moved to its final place after V's slot, so that the slot can hold
// the CMAC state during S2V and a keystream block during CTR.
func (k *sivKey) seal(dst, plaintext []byte, comps [][]byte) []byte {
	ret, out := sliceForAppend(dst, TagSize+len(plaintext))
	checkOverlap(out, plaintext, comps)
	body := out[TagSize:]
	copy(body, plaintext) // memmove: correct for the in-place case too
	slot := out[:TagSize]
	k.s2v(slot, comps, body)
	v := loadBlock(slot)
	k.encryptInPlace(slot, v, body)
	v.store(slot)
	return ret
}

// encryptInPlace is xorKeyStream over body in place for a caller without
// scratch memory (AEAD.Seal): body itself holds each batch of counter
// blocks while they are encrypted, its plaintext waiting in a stack copy
// (which never reaches cipher.Block, so it stays on the stack), and slot
// (16 bytes) serves a final partial block.
func (k *sivKey) encryptInPlace(slot []byte, v block128, body []byte) {
	ctr := ctrStart(v)
	if k.ctr.nr != 0 {
		k.ctrXOR(slot, ctr, body, body) // the AES-NI path needs no scratch
		return
	}
	var pt [ctrBatch * BlockSize]byte
	for len(body) >= BlockSize {
		n := min(len(body)&^(BlockSize-1), len(pt))
		copy(pt[:n], body[:n])
		for i := 0; i < n; i += BlockSize {
			ctr.store(body[i : i+BlockSize])
			ctr.lo++
		}
		for i := 0; i < n; i += BlockSize {
			b := body[i : i+BlockSize]
			k.ctr.b.Encrypt(b, b)
		}
		xorForward(body[:n], body[:n], pt[:n])
		body = body[n:]
	}
	clear(pt[:])
	k.ctrXOR(slot, ctr, body, body)
}

// checkOverlap refuses the aliasing cipher.AEAD forbids: the output may
// start where the input does (in place) but not elsewhere inside it, and
// may not touch any associated data.
func checkOverlap(out, in []byte, comps [][]byte) {
	if inexactOverlap(out, in) {
		panic("siv: invalid buffer overlap")
	}
	for _, c := range comps {
		if anyOverlap(out, c) {
			panic("siv: invalid buffer overlap")
		}
	}
}

// open decrypts into the output region first, because S2V runs over the
// plaintext (RFC 5297 §2.7), then wipes that region if V does not match.
// scratch is at least 16 bytes: the CTR keystream in batches of its length
// rounded down to blocks, then the S2V state.
func (k *sivKey) open(dst, ciphertext []byte, comps [][]byte, scratch []byte) ([]byte, error) {
	if len(ciphertext) < TagSize {
		return nil, ErrOpen
	}
	var v [TagSize]byte
	copy(v[:], ciphertext[:TagSize]) // in place, the output overwrites V
	body := ciphertext[TagSize:]
	ret, out := sliceForAppend(dst, len(body))
	checkOverlap(out, ciphertext, comps)
	k.xorKeyStream(scratch, loadBlock(v[:]), out, body)
	x := scratch[:BlockSize]
	k.s2v(x, comps, out)
	if subtle.ConstantTimeCompare(x, v[:]) != 1 {
		clear(out)
		return nil, ErrOpen
	}
	return ret, nil
}

// s2v sets x (16 bytes) to S2V(K1, comps..., p) as in RFC 5297 §2.4.
func (k *sivKey) s2v(x []byte, comps [][]byte, p []byte) {
	if k.mac.aes.nr != 0 && len(comps) == 2 {
		k.s2vInterleaved(x, comps[0], comps[1], p)
		return
	}
	d := k.d0
	for _, s := range comps {
		k.mac.sum(x, s)
		d = d.dbl().xor(loadBlock(x))
	}
	if len(p) >= BlockSize {
		clear(x)
		k.mac.absorb(x, p[:xorEndStart(len(p))])
		k.finishXorEnd(x, p, d)
		return
	}
	k.lastShort(x, p, d)
}

// s2vInterleaved is s2v for the vector (A, N, P) on the AES-NI path. The
// CMACs of A and N and the chain over P up to its last one or two blocks
// do not depend on each other (only their results are combined into D),
// so they run as interleaved chains in two steps: the blocks of A and N
// before their last, with as many of P's beside them; then the final
// blocks of A and N with the rest of P's. Only P's last blocks, which
// need D, follow on their own. A cookie (A 4, N 16, P 64 octets) takes 4
// blocks of latency instead of 6; an NTS request (A of 228 octets, no P)
// 16 instead of 17.
func (k *sivKey) s2vInterleaved(x, a, n, p []byte) {
	la, ln, lp := lastStart(len(a)), lastStart(len(n)), 0
	if len(p) >= BlockSize {
		lp = xorEndStart(len(p))
	}
	p1 := min(lp, max(la, ln))
	cs := [3]chain{{blocks: a[:la]}, {blocks: n[:ln]}, {blocks: p[:p1]}}
	k.mac.aes.cbc3(&cs)
	var fin [2 * BlockSize]byte
	k.mac.last(a[la:]).store(fin[:BlockSize])
	k.mac.last(n[ln:]).store(fin[BlockSize:])
	cs[0].blocks, cs[1].blocks, cs[2].blocks = fin[:BlockSize], fin[BlockSize:], p[p1:lp]
	k.mac.aes.cbc3(&cs)
	clear(fin[:])
	d := k.d0.dbl().xor(cs[0].x).dbl().xor(cs[1].x)
	if len(p) >= BlockSize {
		cs[2].x.store(x)
		k.finishXorEnd(x, p, d)
		return
	}
	k.lastShort(x, p, d)
}

// lastShort sets x to the S2V result for a plaintext shorter than a block:
// T = dbl(D) xor pad(Sn), one complete block, so CMAC uses K1.
func (k *sivKey) lastShort(x, p []byte, d block128) {
	var t [BlockSize]byte
	copy(t[:], p)
	t[len(p)] = 0x80
	loadBlock(t[:]).xor(d.dbl()).store(t[:])
	k.mac.sum(x, t[:])
}

// xorEndStart is where the final one or two CMAC blocks of an n-byte
// string begin (n >= 16): the last 16 bytes, which "xorend" changes
// (RFC 5297 §2.4), lie inside them, and every block before them goes
// through the CMAC chain unchanged.
func xorEndStart(n int) int { return (n - BlockSize) &^ (BlockSize - 1) }

// finishXorEnd completes x = CMAC(p xorend d) for len(p) >= 16, x holding
// the CBC chain over p[:xorEndStart(len(p))], without writing to p: the
// final one or two blocks are copied to a stack buffer and xored there.
func (k *sivKey) finishXorEnd(x, p []byte, d block128) {
	var tail [2 * BlockSize]byte
	n := copy(tail[:], p[xorEndStart(len(p)):]) // 16..31 bytes
	end := tail[n-BlockSize : n]
	loadBlock(end).xor(d).store(end)
	if n == BlockSize {
		k.mac.finish(x, tail[:BlockSize])
		return
	}
	k.mac.absorb(x, tail[:BlockSize])
	k.mac.finish(x, tail[BlockSize:n])
}

// ctrBatch is how many keystream blocks the CTR loops compute before they
// xor them in, given that much scratch: the blocks do not depend on each
// other, so the CPU overlaps their AES rounds, which a single block at a
// time (each cipher.Block.Encrypt call waiting for the last) does not.
// Measured on the development host (amd64 with AES-NI), 864 bytes: about
// 1,350 ns one block at a time, 1,000 ns in batches of 4, 620 ns in batches
// of 8, no better in batches of 16.
const ctrBatch = 8

// xorKeyStream xors src with the CTR keystream starting at counter V into
// dst, using ks (a multiple of 16 bytes, at least 16) for the keystream
// blocks. dst and src are either the same memory or dst starts 16 bytes
// before src (in-place Open): blocks are processed forward, each read
// before it can be overwritten.
func (k *sivKey) xorKeyStream(ks []byte, v block128, dst, src []byte) {
	k.ctrXOR(ks, ctrStart(v), dst, src)
}

// ctrStart is the first CTR counter for V: V with its 31st and 63rd bits
// cleared (RFC 5297 §2.5 and §5), so the low 64-bit word cannot carry into
// the high one for any plaintext Go can hold, and a 64-bit increment is
// exact addition modulo 2^128. The bits are cleared once, in V only: a
// later counter may carry into them.
func ctrStart(v block128) block128 { return block128{v.hi, v.lo & 0x7fffffff_7fffffff} }

// ctrXOR is xorKeyStream from counter ctr, already derived from V.
func (k *sivKey) ctrXOR(ks []byte, ctr block128, dst, src []byte) {
	if k.ctr.nr != 0 {
		k.ctrXORAsm(ks, ctr, dst, src)
		return
	}
	batch := len(ks) &^ (BlockSize - 1)
	for len(src) > 0 {
		n := min(len(src), batch)
		// All counters first, then all encryptions: the blocks do not
		// depend on each other, and written apart from the AES calls the
		// CPU overlaps those (half the time of interleaving them).
		for i := 0; i < n; i += BlockSize {
			ctr.store(ks[i : i+BlockSize])
			ctr.lo++
		}
		for i := 0; i < n; i += BlockSize {
			b := ks[i : i+BlockSize]
			k.ctr.b.Encrypt(b, b)
		}
		xorForward(dst[:n], src[:n], ks[:n])
		dst, src = dst[n:], src[n:]
	}
}

// ctrXORAsm is ctrXOR on the AES-NI path: the kernel takes the whole blocks
// (eight at a time, no scratch), and a final partial block is xored with
// one keystream block made in ks, which is wiped afterwards.
//
// When ks can hold the whole input rounded up to a block, the input is
// copied there and the kernel takes every block in one call: the partial
// block's keystream then overlaps the others' instead of following them
// through a single encryption of its own (one AES latency, about 12 ns,
// on every NTS cookie and reply, whose lengths are not multiples of 16).
func (k *sivKey) ctrXORAsm(ks []byte, ctr block128, dst, src []byte) {
	n := len(src) / BlockSize
	if padded := (n + 1) * BlockSize; n*BlockSize < len(src) && padded <= len(ks) {
		copy(ks, src) // before dst is written: dst may start before src
		ctrAsm(k.ctr.nr, &k.ctr.rk[0], ctr.hi, ctr.lo, &ks[0], &ks[0], n+1)
		copy(dst, ks[:len(src)])
		clear(ks[:padded])
		return
	}
	if n > 0 {
		ctrAsm(k.ctr.nr, &k.ctr.rk[0], ctr.hi, ctr.lo, &dst[0], &src[0], n)
		ctr.lo += uint64(n)
	}
	if whole := n * BlockSize; whole < len(src) {
		b := ks[:BlockSize]
		ctr.store(b)
		k.ctr.encrypt(b, b)
		xorForward(dst[whole:], src[whole:], b)
		clear(b)
	}
}

// xorForward sets dst = src xor ks a block at a time, front to back, so dst
// may start 16 bytes before src (see xorKeyStream), where subtle.XORBytes
// would refuse the inexact overlap.
func xorForward(dst, src, ks []byte) {
	for len(src) >= BlockSize {
		w0 := binary.LittleEndian.Uint64(src) ^ binary.LittleEndian.Uint64(ks)
		w1 := binary.LittleEndian.Uint64(src[8:]) ^ binary.LittleEndian.Uint64(ks[8:])
		binary.LittleEndian.PutUint64(dst, w0)
		binary.LittleEndian.PutUint64(dst[8:], w1)
		dst, src, ks = dst[BlockSize:], src[BlockSize:], ks[BlockSize:]
	}
	for i := range src {
		dst[i] = src[i] ^ ks[i]
	}
}
