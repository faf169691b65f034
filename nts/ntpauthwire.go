package nts

import (
	"crypto/cipher"
	"encoding/binary"
	"io"
	"slices"

	"timegate/gcmsiv"
	"timegate/ntp"
	"timegate/siv"
)

// The NTS Authenticator and Encrypted Extension Fields extension field
// (RFC 8915 §5.6), the value after the 4-byte RFC 7822 field header:
//
//	+-------------------------------+-------------------------------+
//	|         Nonce Length          |       Ciphertext Length       |
//	+-------------------------------+-------------------------------+
//	.        Nonce, zero-padded to a multiple of 4 octets           .
//	+---------------------------------------------------------------+
//	.  Ciphertext = SIV tag (16) ‖ encrypted extension fields,      .
//	.               zero-padded to a multiple of 4 octets           .
//	+---------------------------------------------------------------+
//	.        Additional Padding (zeros)                             .
//	+---------------------------------------------------------------+
//
// The associated data is the packet from the first header octet up to the
// first octet of this field (RFC 8915 §5.6), so it must be the last field:
// nothing after it would be authenticated.
const (
	authLengthsLen = 4 // Nonce Length + Ciphertext Length
	efHeaderLen    = 4 // RFC 7822 field type + length

	// authNonceLen is the nonce we send with AEAD 15: 16 octets, the length
	// RFC 5297 §3 asks of a random SIV nonce and the one chrony and ntpd-rs
	// send. AEAD 30 takes exactly gcmsiv.NonceSize (12) octets.
	authNonceLen = siv.NonceSize

	// minNonceArea is N_REQ of RFC 8915 §5.6 for AES-SIV-CMAC: the padded
	// nonce plus the Additional Padding must span at least 16 octets, so a
	// server can always answer with a 16-octet nonce without making its
	// reply longer than the request. Servers must discard requests that
	// break it; chrony does the same check ("Missing padding").
	minNonceArea = 16

	// minUIDLen is RFC 8915 §5.3: "The string MUST be at least 32 octets
	// long." Shorter ones make replay detection guessable.
	minUIDLen = 32
	// maxUIDLen bounds the echoed value. No RFC limit exists, but every
	// known client sends 32 octets; a longer UID only lets a stranger
	// choose more of the bytes we send back.
	maxUIDLen = 256

	// maxPlaceholders is the most Cookie Placeholders a request may carry:
	// with its own cookie that asks for MaxCookies, which is all a client
	// keeps (RFC 8915 §5.7, chrony's NTS_MAX_COOKIES).
	maxPlaceholders = MaxCookies - 1

	// cookieFieldLen is the length of one New Cookie field holding one of
	// our cookies (CookieSize is a multiple of 4: no padding).
	cookieFieldLen = efHeaderLen + CookieSize
)

func pad4(n int) int { return (n + 3) &^ 3 }

// authFieldLen is the length of an Authenticator field with a 16-octet nonce
// and ptLen octets of plaintext, before any Additional Padding.
func authFieldLen(ptLen int) int {
	return efHeaderLen + authLengthsLen + authNonceLen + pad4(siv.TagSize+ptLen)
}

// nonceLenFor is the nonce length we send with aead.
func nonceLenFor(aead uint16) int {
	if aead == AEADAES128GCMSIV {
		return gcmsiv.NonceSize
	}
	return authNonceLen
}

// parseAuthenticator splits the value of an Authenticator field into nonce
// and ciphertext. Every length is checked against the field before it is
// used, the nonce area obeys minArea (a server passes N_REQ, minNonceArea;
// a client reading a reply passes 0, since N_REQ binds requests only), the
// ciphertext holds at least a tag, and every padding octet is zero: padding
// is not covered by the AEAD, so insisting on zeros (which RFC 8915 §5.6
// prescribes) leaves no bit of the field that an attacker could flip
// unnoticed.
func parseAuthenticator(v []byte, minArea int) (nonce, ciphertext []byte, ok bool) {
	if len(v) < authLengthsLen {
		return nil, nil, false
	}
	nl := int(binary.BigEndian.Uint16(v))
	cl := int(binary.BigEndian.Uint16(v[2:]))
	body := v[authLengthsLen:]
	if nl < 1 || cl < siv.TagSize || pad4(nl)+pad4(cl) > len(body) ||
		len(body)-pad4(cl) < minArea {
		return nil, nil, false
	}
	nonce = body[:nl]
	ciphertext = body[pad4(nl) : pad4(nl)+cl]
	if !allZero(body[nl:pad4(nl)]) || !allZero(body[pad4(nl)+cl:]) {
		return nil, nil, false
	}
	return nonce, ciphertext, true
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// authWriter builds an Authenticator field in place: begin writes the field
// header, the lengths (filled in later) and a fresh nonce; the caller then
// appends the plaintext extension fields right where the ciphertext goes;
// finish encrypts them in place and pads the field. The server instead
// reserves V's slot first and uses close, which lays out the field and
// leaves the seal to a siv.Cipher, split around the transmit timestamp.
type authWriter struct {
	start    int  // offset of the field header in the buffer
	ptStart  int  // offset of the plaintext (and then of the ciphertext)
	nonceLen int  // octets of nonce before ptStart
	tagged   bool // a V slot was reserved at ptStart (reserveTag)
}

// beginAuth appends the start of an Authenticator field with a nonce of
// nonceLen octets (a multiple of 4: 16 or 12) to b.
func beginAuth(b []byte, rand io.Reader, nonceLen int) ([]byte, authWriter, error) {
	w := authWriter{start: len(b), nonceLen: nonceLen}
	b = append(b, byte(ntp.EFAuthenticator>>8), byte(ntp.EFAuthenticator&0xff), 0, 0,
		0, byte(nonceLen), 0, 0)
	n := len(b)
	b = append(b, make([]byte, nonceLen)...)
	if _, err := io.ReadFull(rand, b[n:]); err != nil {
		return nil, w, err
	}
	w.ptStart = len(b)
	return b, w, nil
}

// finish seals the plaintext appended since beginAuth with a (either AEAD:
// both put a 16-octet tag and the ciphertext in place of the plaintext), the
// associated data being b[adStart:w.start] (the packet from its header up
// to this field, RFC 8915 §5.6), and pads the field with zeros to at least
// minLen octets (rounded down to a multiple of 4), so a reply can match the
// length of its request, and so that the nonce and padding span
// minNonceArea (N_REQ, which a 12-octet nonce alone does not). The caller
// bounds minLen and the plaintext so the field fits its 16-bit length.
func (w authWriter) finish(b []byte, a cipher.AEAD, adStart, minLen int) []byte {
	ptLen := len(b) - w.ptStart
	ctLen := siv.TagSize + ptLen
	fieldLen := max(efHeaderLen+authLengthsLen+max(w.nonceLen, minNonceArea)+pad4(ctLen), minLen&^3)
	b = slices.Grow(b, w.start+fieldLen-len(b))
	nonce := b[w.ptStart-w.nonceLen : w.ptStart]
	pt := b[w.ptStart:]
	// In place: tag and ciphertext land where the plaintext began.
	a.Seal(pt[:0], nonce, pt, b[adStart:w.start])
	b = b[:w.ptStart+ctLen]
	b = append(b, make([]byte, w.start+fieldLen-len(b))...)
	binary.BigEndian.PutUint16(b[w.start+2:], uint16(fieldLen))
	binary.BigEndian.PutUint16(b[w.start+6:], uint16(ctLen))
	return b
}

// reserveTag appends the 16-octet slot where the seal will put V, so that
// the plaintext appended next sits exactly where its ciphertext C goes:
// V ‖ C then needs no move (siv.Cipher.PrepareSeal). Only for a Seal that
// uses close, not finish.
func (w *authWriter) reserveTag(b []byte) []byte {
	b = append(b, make([]byte, siv.TagSize)...)
	w.tagged = true
	return b
}

// close completes the Authenticator around the V slot and the plaintext
// appended since reserveTag, everything but the seal itself: it writes the
// lengths and pads the field with zeros to at least minLen octets (rounded
// down to a multiple of 4), as finish does. It returns out, the V slot and
// plaintext to seal in place, and the nonce; the associated data is the
// packet from its header up to w.start. The caller bounds minLen and the
// plaintext so the field fits its 16-bit length.
func (w authWriter) close(b []byte, minLen int) (_, out, nonce []byte) {
	if !w.tagged {
		panic("nts: close without reserveTag")
	}
	ctLen := len(b) - w.ptStart // V slot ‖ plaintext
	fieldLen := max(efHeaderLen+authLengthsLen+authNonceLen+pad4(ctLen), minLen&^3)
	b = append(b, make([]byte, w.start+fieldLen-len(b))...)
	binary.BigEndian.PutUint16(b[w.start+2:], uint16(fieldLen))
	binary.BigEndian.PutUint16(b[w.start+6:], uint16(ctLen))
	return b, b[w.ptStart : w.ptStart+ctLen], b[w.ptStart-w.nonceLen : w.ptStart]
}

// appendFieldHeader appends an RFC 7822 field header announcing a value of
// n octets (a multiple of 4; at least 12 outside an Authenticator) to b; the
// caller appends the value.
func appendFieldHeader(b []byte, typ uint16, n int) []byte {
	l := efHeaderLen + n
	return append(b, byte(typ>>8), byte(typ), byte(l>>8), byte(l))
}

// efWalker walks the extension fields inside a decrypted Authenticator.
// RFC 8915 §5.6 lets them be shorter than RFC 7822's 16 octets, but each is
// still a multiple of 4 and at least its own header. A loop over next
// rather than a callback keeps the plaintext buffer on the caller's stack.
type efWalker struct {
	rest []byte
	bad  bool // set when the fields are malformed
}

// next returns the next field, or false at the end or on malformed input
// (which also sets w.bad).
func (w *efWalker) next() (typ uint16, value []byte, ok bool) {
	if len(w.rest) == 0 {
		return 0, nil, false
	}
	if len(w.rest) < efHeaderLen {
		w.bad = true
		return 0, nil, false
	}
	typ = binary.BigEndian.Uint16(w.rest)
	n := int(binary.BigEndian.Uint16(w.rest[2:]))
	if n < efHeaderLen || n%4 != 0 || n > len(w.rest) {
		w.bad = true
		return 0, nil, false
	}
	value, w.rest = w.rest[efHeaderLen:n], w.rest[n:]
	return typ, value, true
}

// wellFormed reports whether pt is a sequence of well-formed encrypted fields.
func wellFormed(pt []byte) bool {
	w := efWalker{rest: pt}
	for _, _, ok := w.next(); ok; _, _, ok = w.next() {
	}
	return !w.bad
}
