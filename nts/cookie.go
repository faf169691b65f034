package nts

import (
	"encoding/binary"
	"io"
	"slices"
)

// Cookie is what a server cookie carries: the AEAD negotiated for the NTP
// association and the two keys exported from the NTS-KE TLS session (RFC 8915
// §5.1). Fixed arrays keep sealing and opening free of allocations.
type Cookie struct {
	AEAD uint16
	C2S  [KeyLen]byte
	S2C  [KeyLen]byte
}

// Cookie geometry. RFC 8915 §6 leaves the format to the server; ours follows
// its recommendation (key id ‖ nonce ‖ AEAD output) and is sealed with
// AES-SIV-CMAC-256, which stays safe if a random nonce ever repeats:
//
//	+--------+------------+---------------------------------------------+
//	| key id | nonce      | AES-SIV(master, AD = key id,                |
//	| 4      | 16         |   AEAD id 2 | 0 0 | C2S 32 | S2C 32) + tag 16 |
//	+--------+------------+---------------------------------------------+
//	           104 bytes: a multiple of 4, so the NTP cookie and cookie
//	           placeholder extension fields need no padding (RFC 7822 §3).
const (
	// KeyLen is the C2S/S2C key length of AEAD_AES_SIV_CMAC_256: two
	// AES-128 keys (RFC 5297 §2.2).
	KeyLen = 32
	// CookieSize is the length of every cookie this package seals.
	CookieSize = cookieIDLen + cookieNonceLen + cookiePlainLen + cookieTagLen

	cookieIDLen    = 4
	cookieNonceLen = 16
	cookiePlainLen = 4 + 2*KeyLen
	cookieTagLen   = 16
)

// SealCookie appends a cookie holding c, sealed under the current key, to dst.
// It allocates only when dst lacks CookieSize bytes of spare capacity.
func (r *KeyRing) SealCookie(dst []byte, c Cookie, rand io.Reader) ([]byte, error) {
	if !supportedAEAD(c.AEAD) {
		return nil, ErrUnsupportedAEAD
	}
	k := r.current()
	dst = slices.Grow(dst, CookieSize)
	off := len(dst)
	out := dst[off : off+CookieSize]
	binary.BigEndian.PutUint32(out, k.id)
	nonce := out[cookieIDLen : cookieIDLen+cookieNonceLen]
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, err
	}
	pt := out[cookieIDLen+cookieNonceLen : cookieIDLen+cookieNonceLen+cookiePlainLen]
	binary.BigEndian.PutUint16(pt, c.AEAD)
	pt[2], pt[3] = 0, 0
	copy(pt[4:], c.C2S[:])
	copy(pt[4+KeyLen:], c.S2C[:])
	// Sealing in place: pt[:0] reuses the plaintext's storage, and the tag
	// lands in the last 16 bytes of out.
	k.aead.Seal(pt[:0], nonce, pt, out[:cookieIDLen])
	return dst[:off+CookieSize], nil
}

// OpenCookie authenticates and decrypts a cookie sealed by any key of the
// ring. A cookie of a dropped key gives ErrCookieKeyUnknown; anything else
// that is wrong (length, tag, reserved bytes, AEAD id) gives ErrCookieInvalid.
func (r *KeyRing) OpenCookie(cookie []byte) (Cookie, error) {
	var c Cookie
	if len(cookie) != CookieSize {
		return c, ErrCookieInvalid
	}
	k := r.find(binary.BigEndian.Uint32(cookie))
	if k == nil {
		return c, ErrCookieKeyUnknown
	}
	var buf [cookiePlainLen]byte
	pt, err := k.aead.Open(buf[:0], cookie[cookieIDLen:cookieIDLen+cookieNonceLen],
		cookie[cookieIDLen+cookieNonceLen:], cookie[:cookieIDLen])
	if err != nil || len(pt) != cookiePlainLen {
		return c, ErrCookieInvalid
	}
	c.AEAD = binary.BigEndian.Uint16(pt)
	if !supportedAEAD(c.AEAD) || pt[2] != 0 || pt[3] != 0 {
		return Cookie{}, ErrCookieInvalid
	}
	copy(c.C2S[:], pt[4:])
	copy(c.S2C[:], pt[4+KeyLen:])
	return c, nil
}
