package nts

import (
	"encoding/binary"
	"io"
	"slices"
)

// Cookie is what a server cookie carries: the AEAD negotiated for the NTP
// association and the two keys exported from the NTS-KE TLS session (RFC 8915
// §5.1): 32 octets each for AEAD 15, 16 for AEAD 30 (the rest of the arrays
// zero). Fixed arrays keep sealing and opening free of allocations.
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
//	           With AEAD 30 the keys are 16 octets each: 72 bytes.
const (
	// KeyLen is the C2S/S2C key length of AEAD_AES_SIV_CMAC_256: two
	// AES-128 keys (RFC 5297 §2.2); the longest key this package uses.
	KeyLen = 32
	// CookieSize is the length of a cookie for AEAD 15, the longest.
	CookieSize = cookieIDLen + cookieNonceLen + cookiePlainLen + cookieTagLen
	// CookieSizeGCMSIV is the length of a cookie for AEAD 30.
	CookieSizeGCMSIV = CookieSize - 2*(KeyLen-16)

	cookieIDLen    = 4
	cookieNonceLen = 16
	cookiePlainLen = 4 + 2*KeyLen // the longest plaintext
	cookieTagLen   = 16
)

// cookieSize is the length of a cookie for aead (0 for an unsupported one).
func cookieSize(aead uint16) int {
	switch aead {
	case AEADAESSIVCMAC256:
		return CookieSize
	case AEADAES128GCMSIV:
		return CookieSizeGCMSIV
	}
	return 0
}

// SealCookie appends a cookie holding c, sealed under the current key, to dst.
// It allocates only when dst lacks CookieSize bytes of spare capacity.
func (r *KeyRing) SealCookie(dst []byte, c Cookie, rand io.Reader) ([]byte, error) {
	if !supportedAEAD(c.AEAD) {
		return nil, ErrUnsupportedAEAD
	}
	k := r.current()
	size, kl := cookieSize(c.AEAD), aeadKeyLen(c.AEAD)
	dst = slices.Grow(dst, size)
	off := len(dst)
	out := dst[off : off+size]
	binary.BigEndian.PutUint32(out, k.id)
	nonce := out[cookieIDLen : cookieIDLen+cookieNonceLen]
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, err
	}
	pt := out[cookieIDLen+cookieNonceLen : size-cookieTagLen]
	binary.BigEndian.PutUint16(pt, c.AEAD)
	pt[2], pt[3] = 0, 0
	copy(pt[4:], c.C2S[:kl])
	copy(pt[4+kl:], c.S2C[:kl])
	// Sealing in place: pt[:0] reuses the plaintext's storage, and the tag
	// lands in the last 16 bytes of out.
	k.aead.Seal(pt[:0], nonce, pt, out[:cookieIDLen])
	return dst[:off+size], nil
}

// OpenCookie authenticates and decrypts a cookie sealed by any key of the
// ring. A cookie of a dropped key gives ErrCookieKeyUnknown; anything else
// that is wrong (length, tag, reserved bytes, AEAD id) gives ErrCookieInvalid.
func (r *KeyRing) OpenCookie(cookie []byte) (Cookie, error) {
	var c Cookie
	if len(cookie) != CookieSize && len(cookie) != CookieSizeGCMSIV {
		return c, ErrCookieInvalid
	}
	k := r.find(binary.BigEndian.Uint32(cookie))
	if k == nil {
		return c, ErrCookieKeyUnknown
	}
	var buf [cookiePlainLen]byte
	pt, err := k.aead.Open(buf[:0], cookie[cookieIDLen:cookieIDLen+cookieNonceLen],
		cookie[cookieIDLen+cookieNonceLen:], cookie[:cookieIDLen])
	if err != nil {
		return c, ErrCookieInvalid
	}
	err = cookieFromPlain(&c, pt)
	return c, err
}

// cookieFromPlain reads an opened cookie's plaintext into c (zeroed when
// it is invalid). Through a pointer, not returned: the batch path fills a
// request's cookie in place, and copying a returned Cookie in 16-octet
// moves stalls on the narrower stores that just wrote it (siv's padded).
func cookieFromPlain(c *Cookie, pt []byte) error {
	*c = Cookie{}
	if len(pt) < 4 {
		return ErrCookieInvalid
	}
	aead := binary.BigEndian.Uint16(pt)
	// The length must be the AEAD's own: a cookie never opens with keys of
	// another AEAD's length.
	kl := aeadKeyLen(aead)
	if !supportedAEAD(aead) || len(pt) != 4+2*kl || pt[2] != 0 || pt[3] != 0 {
		return ErrCookieInvalid
	}
	c.AEAD = aead
	copy(c.C2S[:kl], pt[4:])
	copy(c.S2C[:kl], pt[4+kl:])
	return nil
}
