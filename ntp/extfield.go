package ntp

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
)

// Extension field types used by NTS (RFC 8915 §5.7). RFC 7822 left the type
// space to IANA; these are the assigned values.
const (
	EFUniqueIdentifier   uint16 = 0x0104
	EFCookie             uint16 = 0x0204
	EFCookiePlaceholder  uint16 = 0x0304
	EFAuthenticator      uint16 = 0x0404
	efHeaderLen                 = 4
	minExtFieldLen              = 16 // RFC 7822 §3: an extension field is at least 16 octets
	minLastExtFieldNoMAC        = 28 // RFC 7822 §7.5: without a MAC the last field is at least 28 octets
)

// An extension field (RFC 7822 §3):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Field Type           |            Length             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	.                             Value                             .
//	.                    (padded to a multiple of 4)                .
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Length counts the whole field including its 4-byte header.

// ExtField is one extension field as it sits in a packet. Value aliases the
// packet buffer and includes any padding.
type ExtField struct {
	Type  uint16
	Value []byte
	// Offset is where the field starts within the packet, so authenticators
	// can cover the raw bytes before them.
	Offset int
}

// ErrBadExtField is returned when extension fields are not well framed.
var ErrBadExtField = errors.New("ntp: malformed extension field")

// ExtFieldIter walks the extension fields of a packet whose framing Parse has
// already checked. It allocates nothing.
type ExtFieldIter struct {
	s    cryptobyte.String
	base int
	off  int
}

// Next returns the next field, or false when there are no more.
func (it *ExtFieldIter) Next() (ExtField, bool) {
	var typ, length uint16
	start := it.off
	if !it.s.ReadUint16(&typ) || !it.s.ReadUint16(&length) ||
		length < efHeaderLen {
		return ExtField{}, false
	}
	var value []byte
	if !it.s.ReadBytes(&value, int(length)-efHeaderLen) {
		return ExtField{}, false
	}
	it.off += int(length)
	return ExtField{Type: typ, Value: value, Offset: it.base + start}, true
}

// AppendExtField appends a field of type typ holding value, padded with zeros
// to a multiple of 4 and to the RFC 7822 minimum of 16 octets. It panics if
// the field would not fit the 16-bit length, which only a programming error
// can cause: callers bound their values.
func AppendExtField(dst []byte, typ uint16, value []byte) []byte {
	n := ExtFieldLen(len(value))
	if n > 0xffff {
		panic("ntp: extension field value too long")
	}
	dst = append(dst, byte(typ>>8), byte(typ), byte(n>>8), byte(n))
	dst = append(dst, value...)
	for i := efHeaderLen + len(value); i < n; i++ {
		dst = append(dst, 0)
	}
	return dst
}

// ExtFieldLen returns the encoded length of a field with a value of n bytes.
func ExtFieldLen(n int) int {
	l := (efHeaderLen + n + 3) &^ 3
	if l < minExtFieldLen {
		l = minExtFieldLen
	}
	return l
}

// checkExtField reports the length of a well-formed field at the start of b,
// or 0: at least 16 bytes, a multiple of 4, and not past the end of b.
func checkExtField(b []byte) int {
	if len(b) < minExtFieldLen {
		return 0
	}
	n := int(b[2])<<8 | int(b[3])
	if n < minExtFieldLen || n%4 != 0 || n > len(b) {
		return 0
	}
	return n
}
