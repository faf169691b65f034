package siv

import (
	"crypto/aes"
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
// safe for concurrent use.
type AEAD struct {
	mac CMAC         // S2V key K1
	ctr cipher.Block // CTR key K2
	// d0 caches CMAC(K1, <zero>), the first step of every S2V (RFC 5297 §2.4;
	// §5 allows caching invariant parts).
	d0 block128
}

var _ cipher.AEAD = (*AEAD)(nil)

// New returns AES-SIV-CMAC keyed with K = K1 ‖ K2: a 32-byte key is
// AEAD_AES_SIV_CMAC_256 (NTS AEAD id 15), 48 and 64 bytes are the -384 and
// -512 variants (RFC 5297 §6.1–§6.3).
func New(key []byte) (*AEAD, error) {
	switch len(key) {
	case 32, 48, 64:
	default:
		return nil, fmt.Errorf("%w: AES-SIV-CMAC key must be 32, 48 or 64 bytes, got %d", ErrKeySize, len(key))
	}
	half := len(key) / 2
	k1, err := aes.NewCipher(key[:half])
	if err != nil {
		return nil, fmt.Errorf("siv: %w", err)
	}
	k2, err := aes.NewCipher(key[half:])
	if err != nil {
		return nil, fmt.Errorf("siv: %w", err)
	}
	a := &AEAD{ctr: k2}
	a.mac.init(k1)
	var zero, d0 [BlockSize]byte
	a.mac.sum(d0[:], zero[:])
	a.d0 = loadBlock(d0[:])
	return a, nil
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
	return a.open(dst, ciphertext, comps[:])
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
	return a.open(dst, ciphertext, components)
}

// seal writes V ‖ C without any scratch memory of its own: the plaintext is
// first moved to its final place after V's slot, so that the slot can hold
// the CMAC state during S2V and a keystream block during CTR.
func (a *AEAD) seal(dst, plaintext []byte, comps [][]byte) []byte {
	ret, out := sliceForAppend(dst, TagSize+len(plaintext))
	if inexactOverlap(out, plaintext) {
		panic("siv: invalid buffer overlap")
	}
	for _, c := range comps {
		if anyOverlap(out, c) {
			panic("siv: invalid buffer overlap")
		}
	}
	body := out[TagSize:]
	copy(body, plaintext) // memmove: correct for the in-place case too
	slot := out[:TagSize]
	a.s2v(slot, comps, body)
	v := loadBlock(slot)
	a.xorKeyStream(slot, v, body, body)
	v.store(slot)
	return ret
}

// open decrypts into the output region first, because S2V runs over the
// plaintext (RFC 5297 §2.7), then wipes that region if V does not match.
func (a *AEAD) open(dst, ciphertext []byte, comps [][]byte) ([]byte, error) {
	if len(ciphertext) < TagSize {
		return nil, ErrOpen
	}
	var v [TagSize]byte
	copy(v[:], ciphertext[:TagSize]) // in place, the output overwrites V
	body := ciphertext[TagSize:]
	ret, out := sliceForAppend(dst, len(body))
	if inexactOverlap(out, ciphertext) {
		panic("siv: invalid buffer overlap")
	}
	for _, c := range comps {
		if anyOverlap(out, c) {
			panic("siv: invalid buffer overlap")
		}
	}
	x := a.mac.getScratch()
	defer a.mac.putScratch(x)
	a.xorKeyStream(x[:], loadBlock(v[:]), out, body)
	a.s2v(x[:], comps, out)
	if subtle.ConstantTimeCompare(x[:], v[:]) != 1 {
		clear(out)
		return nil, ErrOpen
	}
	return ret, nil
}

// s2v sets x (16 bytes) to S2V(K1, comps..., p) as in RFC 5297 §2.4.
func (a *AEAD) s2v(x []byte, comps [][]byte, p []byte) {
	d := a.d0
	for _, s := range comps {
		a.mac.sum(x, s)
		d = d.dbl().xor(loadBlock(x))
	}
	if len(p) >= BlockSize {
		a.sumXorEnd(x, p, d)
		return
	}
	// T = dbl(D) xor pad(Sn): one complete block, so CMAC uses K1.
	var t [BlockSize]byte
	copy(t[:], p)
	t[len(p)] = 0x80
	loadBlock(t[:]).xor(d.dbl()).store(t[:])
	a.mac.sum(x, t[:])
}

// sumXorEnd sets x to CMAC(p xorend d) for len(p) >= 16 without writing to p:
// only the last 16 bytes change, and they lie in the final one or two CMAC
// blocks, which are copied to a stack buffer and xored there.
func (a *AEAD) sumXorEnd(x, p []byte, d block128) {
	tailStart := (len(p) - BlockSize) &^ (BlockSize - 1)
	var tail [2 * BlockSize]byte
	n := copy(tail[:], p[tailStart:]) // 16..31 bytes
	end := tail[n-BlockSize : n]
	loadBlock(end).xor(d).store(end)

	clear(x)
	a.mac.absorb(x, p[:tailStart])
	if n == BlockSize {
		a.mac.finish(x, tail[:BlockSize])
		return
	}
	a.mac.absorb(x, tail[:BlockSize])
	a.mac.finish(x, tail[BlockSize:n])
}

// xorKeyStream xors src with the CTR keystream starting at counter V into
// dst, using ks (16 bytes) as the keystream block. dst and src are either the
// same memory or dst starts 16 bytes before src (in-place Open): blocks are
// processed forward, so each block is read before it can be overwritten.
//
// The 31st and 63rd bits of the counter are cleared (RFC 5297 §2.5 and §5),
// so the low 64-bit word cannot carry into the high one for any plaintext Go
// can hold, and a 64-bit increment is exact addition modulo 2^128.
func (a *AEAD) xorKeyStream(ks []byte, v block128, dst, src []byte) {
	ctr := block128{v.hi, v.lo & 0x7fffffff_7fffffff}
	for len(src) > 0 {
		binary.BigEndian.PutUint64(ks[:8], ctr.hi)
		binary.BigEndian.PutUint64(ks[8:BlockSize], ctr.lo)
		ctr.lo++
		a.ctr.Encrypt(ks, ks)
		n := min(len(src), BlockSize)
		subtle.XORBytes(dst[:n], src[:n], ks[:n])
		dst, src = dst[n:], src[n:]
	}
}
