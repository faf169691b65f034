// Package gcmsiv implements AES-GCM-SIV (RFC 8452), the nonce-misuse
// resistant AEAD that NTS registers as AEAD_AES_128_GCM_SIV (id 30): a
// 16-byte key, 12-byte nonce and 16-byte tag. Neither the standard library
// nor x/crypto has it. Like package siv, it is our own small implementation
// on crypto/aes, whose assembly uses the CPU's constant-time AES
// instructions; POLYVAL is constant time too (polyval.go). It is tested
// against the RFC 8452 appendix vectors and Wycheproof's
// aes_gcm_siv_test.json.
//
// Seal (RFC 8452 §4), for a key-generating key K and nonce N:
//
//	auth key  = AES(K, 0‖N)[:8] ‖ AES(K, 1‖N)[:8]            (LE32 counters)
//	enc key   = AES(K, 2‖N)[:8] ‖ AES(K, 3‖N)[:8] [‖ 4, 5 for AES-256]
//	S         = POLYVAL(auth key, A ‖ pad, P ‖ pad, LE64(8·|A|) ‖ LE64(8·|P|))
//	tag       = AES(enc key, (S ⊕ N) with bit 127 cleared)
//	C         = P ⊕ AES-CTR(enc key, tag with bit 127 set; LE32 counter)
//
//	+---------------------------+-----------+
//	| C: len(P) octets          | tag (16)  |
//	+---------------------------+-----------+
//
// Memory: RFC 8452 derives a new AES key for every nonce, and crypto/aes
// offers no way to expand a key into the caller's memory, so Seal and Open
// allocate that key schedule once per call. Any buffer handed to
// cipher.Block.Encrypt escapes, so AES runs in place in dst's tag slot
// (Seal) or in a 32-byte scratch (Open, which may have no output to
// borrow): Seal allocates once, Open twice.
package gcmsiv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes (RFC 8452 §4, §5).
const (
	BlockSize = 16
	NonceSize = 12
	TagSize   = 16
	// maxPlaintext is RFC 8452 §6's limit: 2^36 octets, past which the
	// 32-bit block counter would repeat.
	maxPlaintext = 1 << 36
)

var (
	// ErrKeySize: the key is neither 16 (AES-128-GCM-SIV) nor 32 bytes.
	ErrKeySize = errors.New("gcmsiv: key must be 16 or 32 bytes")
	// ErrOpen: the ciphertext is not authentic (or too short); nothing of
	// it is returned.
	ErrOpen = errors.New("gcmsiv: message authentication failed")
)

// AEAD is AES-GCM-SIV with the cipher.AEAD method set, safe for concurrent
// use: it holds only the key-generating key's schedule.
type AEAD struct {
	kgk    cipher.Block
	keyLen int
}

var _ cipher.AEAD = (*AEAD)(nil)

// New returns AES-GCM-SIV keyed with a 16-byte (AEAD_AES_128_GCM_SIV, NTS id
// 30) or 32-byte (AEAD_AES_256_GCM_SIV) key-generating key.
func New(key []byte) (*AEAD, error) {
	if len(key) != 16 && len(key) != 32 {
		return nil, fmt.Errorf("%w, got %d", ErrKeySize, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("gcmsiv: %w", err)
	}
	return &AEAD{kgk: b, keyLen: len(key)}, nil
}

// NonceSize returns 12: RFC 8452 defines no other nonce length.
func (a *AEAD) NonceSize() int { return NonceSize }

// Overhead returns the tag length, 16.
func (a *AEAD) Overhead() int { return TagSize }

// deriveKeys computes the per-nonce keys (RFC 8452 §4) into auth and enc,
// using blk (16 bytes of the caller's memory) as AES output scratch: a
// buffer handed to cipher.Block.Encrypt escapes, so it cannot be a local.
func (a *AEAD) deriveKeys(nonce []byte, auth *[16]byte, enc *[32]byte, blk []byte) {
	for i := range 2 + a.keyLen/8 {
		// Encrypted in place: the input block is built in blk too.
		binary.LittleEndian.PutUint32(blk[:4], uint32(i))
		copy(blk[4:], nonce)
		a.kgk.Encrypt(blk, blk)
		if i < 2 {
			copy(auth[8*i:], blk[:8])
		} else {
			copy(enc[8*(i-2):], blk[:8])
		}
	}
	clear(blk)
}

// tagFor computes the tag over ad and plaintext into out (16 bytes).
func tagFor(encBlock cipher.Block, auth *[16]byte, nonce, ad, plaintext, out []byte) {
	p := polyval{h: loadElement(auth[:])}
	p.update(ad)
	p.update(plaintext)
	var lens [BlockSize]byte
	binary.LittleEndian.PutUint64(lens[:8], uint64(len(ad))*8)
	binary.LittleEndian.PutUint64(lens[8:], uint64(len(plaintext))*8)
	p.update(lens[:])
	p.s.put(out)
	subtle.XORBytes(out[:NonceSize], out[:NonceSize], nonce)
	out[15] &= 0x7f
	encBlock.Encrypt(out, out)
}

// ctr XORs src with the AES-CTR keystream from the tag into dst, using ks
// (16 bytes) for the keystream block. The counter is the first 32 bits,
// little-endian, wrapping (RFC 8452 §4).
func ctr(encBlock cipher.Block, tag, dst, src, ks []byte) {
	var block [BlockSize]byte
	copy(block[:], tag)
	block[15] |= 0x80
	n := binary.LittleEndian.Uint32(block[:4])
	for len(src) > 0 {
		binary.LittleEndian.PutUint32(block[:4], n)
		copy(ks, block[:]) // encrypted in place, so that block stays on the stack
		encBlock.Encrypt(ks, ks)
		m := subtle.XORBytes(dst, src, ks[:min(len(src), BlockSize)])
		dst, src = dst[m:], src[m:]
		n++
	}
	clear(ks)
}

// Seal appends the encryption of plaintext and the tag to dst. dst and
// plaintext may overlap exactly or not at all. It panics on a nonce of
// another length than 12, as crypto/cipher's AEADs do.
func (a *AEAD) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != NonceSize {
		panic("gcmsiv: incorrect nonce length given to Seal")
	}
	if uint64(len(plaintext)) > maxPlaintext {
		panic("gcmsiv: message too large for Seal")
	}
	ret, out := sliceForAppend(dst, len(plaintext)+TagSize)
	body, tag := out[:len(plaintext)], out[len(plaintext):]
	var auth [16]byte
	var enc [32]byte
	a.deriveKeys(nonce, &auth, &enc, tag)
	encBlock, _ := aes.NewCipher(enc[:a.keyLen]) // length checked in New
	clear(enc[:])
	// The tag is computed over the plaintext before the ciphertext may
	// overwrite it (exact overlap); the keystream block is computed in a
	// buffer that holds nothing yet: the tag's own slot is taken, so it is
	// kept aside on the stack while CTR runs.
	var t [TagSize]byte
	tagFor(encBlock, &auth, nonce, additionalData, plaintext, tag)
	copy(t[:], tag)
	ctr(encBlock, t[:], body, plaintext, tag)
	copy(tag, t[:])
	return ret
}

// Open authenticates and decrypts ciphertext (which ends with the tag) and
// appends the plaintext to dst. On failure the plaintext region of dst is
// zeroed and ErrOpen returned. dst and ciphertext may overlap exactly.
func (a *AEAD) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		panic("gcmsiv: incorrect nonce length given to Open")
	}
	if len(ciphertext) < TagSize || uint64(len(ciphertext)) > maxPlaintext+TagSize {
		return nil, ErrOpen
	}
	var tag [TagSize]byte
	n := len(ciphertext) - TagSize
	copy(tag[:], ciphertext[n:])
	ret, out := sliceForAppend(dst, n)
	var auth [16]byte
	var enc [32]byte
	scratch := make([]byte, 2*BlockSize) // see the package comment on Memory
	a.deriveKeys(nonce, &auth, &enc, scratch[:BlockSize])
	encBlock, _ := aes.NewCipher(enc[:a.keyLen])
	clear(enc[:])
	ctr(encBlock, tag[:], out, ciphertext[:n], scratch[:BlockSize])
	want := scratch[BlockSize:]
	tagFor(encBlock, &auth, nonce, additionalData, out, want)
	if subtle.ConstantTimeCompare(want, tag[:]) != 1 {
		clear(out)
		return nil, ErrOpen
	}
	return ret, nil
}

// sliceForAppend extends in by n bytes, reallocating only when it must,
// and returns the whole slice and the new tail (crypto/cipher's idiom).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}
