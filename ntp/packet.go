package ntp

import "errors"

// Legacy MAC trailer (RFC 5905 §7.3, RFC 8573): a 32-bit key identifier
// followed by a digest. Digest lengths are those of MD5 / AES-CMAC (16), SHA1
// (20) and the 24-byte truncated digests some ntpd builds send. A 4-byte
// trailer holding only a key ID of 0 is the crypto-NAK of RFC 5905 §7.4.
const (
	keyIDLen     = 4
	cryptoNAKLen = keyIDLen
	minMACLen    = keyIDLen + 16
	maxV4MACLen  = keyIDLen + 24
	maxV3MACLen  = keyIDLen + 64 // chrony uses NTPv3 for digests longer than 160 bits
	maxExtFields = 32            // more than NTS ever needs (UID, cookie, 7 placeholders, authenticator); bounds parsing work
	MaxPacketLen = 1024          // nothing legitimate is larger; bigger datagrams are not parsed at all
	versionNTPv3 = 3
	versionNTPv4 = 4
)

// Packet is a parsed view of a datagram: the header, the raw extension-field
// region and the raw MAC trailer. The slices alias the input.
type Packet struct {
	Header Header
	// Fields is the extension-field region (between the header and the MAC).
	Fields []byte
	// NumFields is how many extension fields Fields holds.
	NumFields int
	// MAC is the key ID and digest, or nil. A 4-byte MAC is a crypto-NAK.
	MAC []byte
	// NTS is where Parse found the NTS fields, in its one walk over Fields.
	NTS NTSFields
}

// NTSFields locates the NTS extension fields of a packet (RFC 8915 §5.7),
// as Parse met them in its one walk over the field region: the responder
// tells an NTS request by them and the NTS handler checks their shape from
// them, so that no one walks the fields again. Values alias the packet.
// Counts saturate at 255 (Parse admits at most maxExtFields fields).
type NTSFields struct {
	UID    []byte // value of the first Unique Identifier
	Cookie []byte // value of the last Cookie
	// Auth is the value of the last Authenticator, and AuthOffset where that
	// field starts in the packet: its associated data ends there.
	Auth       []byte
	AuthOffset int
	// PlaceholderLen is the value length shared by every Cookie
	// Placeholder, or -1 when they differ (0 with none).
	PlaceholderLen                     int
	UIDs, Cookies, Placeholders, Auths uint8
}

// Any reports whether the packet has any NTS field at all.
func (f *NTSFields) Any() bool { return f.UIDs|f.Cookies|f.Placeholders|f.Auths != 0 }

// FindNTS walks a field region that Parse has already framed (fields,
// starting at HeaderLen in its packet) and locates its NTS fields, as
// Parse does during its own walk. For callers that hold a field region
// without a Packet (tests of NTS handlers, with regions longer than a
// datagram Parse admits).
func FindNTS(fields []byte) NTSFields {
	var f NTSFields
	p := Packet{Fields: fields}
	it := p.ExtFields()
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		f.note(e.Type, e.Value, e.Offset)
	}
	return f
}

// note records one field of the walk.
func (f *NTSFields) note(typ uint16, value []byte, offset int) {
	switch typ {
	case EFUniqueIdentifier:
		if inc(&f.UIDs) == 1 {
			f.UID = value
		}
	case EFCookie:
		inc(&f.Cookies)
		f.Cookie = value
	case EFCookiePlaceholder:
		if inc(&f.Placeholders) == 1 {
			f.PlaceholderLen = len(value)
		} else if f.PlaceholderLen != len(value) {
			f.PlaceholderLen = -1
		}
	case EFAuthenticator:
		inc(&f.Auths)
		f.Auth, f.AuthOffset = value, offset
	}
}

// inc counts one more, saturating: a count never wraps to look small.
func inc(n *uint8) uint8 {
	if *n < 255 {
		*n++
	}
	return *n
}

// Framing errors.
var (
	ErrTooLong      = errors.New("ntp: packet longer than 1024 bytes")
	ErrBadTrailer   = errors.New("ntp: bytes after the header are neither extension fields nor a MAC")
	ErrTooManyField = errors.New("ntp: too many extension fields")
)

// Parse splits b into header, extension fields and MAC following RFC 7822 §7.5.
// It does not judge header fields (version, mode...), only framing, so the
// same function serves requests, replies and fuzzing.
func Parse(b []byte) (Packet, error) {
	var p Packet
	err := parseInto(&p, b)
	return p, err
}

// parseInto is Parse writing into p, which must be zero: the responder
// parses into its own frame, without copying a Packet out and back.
func parseInto(p *Packet, b []byte) error {
	if len(b) > MaxPacketLen {
		return ErrTooLong
	}
	h, err := DecodeHeader(b)
	if err != nil {
		return err
	}
	p.Header = h
	rest := b[HeaderLen:]
	if h.Version < versionNTPv4 {
		// NTPv3 (RFC 1305) has no extension fields: only a MAC may follow.
		if len(rest) == 0 {
			return nil
		}
		if len(rest) == cryptoNAKLen || (len(rest) >= minMACLen && len(rest) <= maxV3MACLen && len(rest)%4 == 0) {
			p.MAC = rest
			return nil
		}
		return ErrBadTrailer
	}
	off, last := 0, 0
	for off < len(rest) {
		r := rest[off:]
		if isMACLen(r) {
			p.MAC = r
			break
		}
		n := checkExtField(r)
		if n == 0 {
			return ErrBadExtField
		}
		if p.NumFields++; p.NumFields > maxExtFields {
			return ErrTooManyField
		}
		p.NTS.note(uint16(r[0])<<8|uint16(r[1]), r[efHeaderLen:n], HeaderLen+off)
		off, last = off+n, n
	}
	p.Fields = rest[:off]
	if p.MAC == nil && p.NumFields > 0 && last < minLastExtFieldNoMAC {
		return ErrBadExtField
	}
	return nil
}

// isMACLen decides whether the remaining bytes are a MAC trailer. A 20- or
// 24-byte remainder can only be a MAC, since RFC 7822 §7.5 makes the last
// field at least 28 bytes when no MAC follows. A 28-byte remainder is
// ambiguous; it is a field if it is framed as one of exactly that length.
func isMACLen(r []byte) bool {
	switch len(r) {
	case cryptoNAKLen, minMACLen, minMACLen + 4:
		return true
	case maxV4MACLen:
		return checkExtField(r) != len(r)
	}
	return false
}

// ExtFields returns an iterator over p's extension fields. base is where the
// field region starts in the datagram (HeaderLen for a parsed packet).
func (p *Packet) ExtFields() ExtFieldIter {
	return ExtFieldIter{s: p.Fields, base: HeaderLen}
}

// KeyID returns the key identifier of the MAC trailer, and whether there is one.
func (p *Packet) KeyID() (uint32, bool) {
	if len(p.MAC) < keyIDLen {
		return 0, false
	}
	return uint32(p.MAC[0])<<24 | uint32(p.MAC[1])<<16 | uint32(p.MAC[2])<<8 | uint32(p.MAC[3]), true
}

// Digest returns the digest part of the MAC trailer (empty for a crypto-NAK).
func (p *Packet) Digest() []byte {
	if len(p.MAC) < keyIDLen {
		return nil
	}
	return p.MAC[keyIDLen:]
}

// Append encodes p: header, the raw field region, then the MAC.
func (p *Packet) Append(dst []byte) []byte {
	dst = p.Header.Append(dst)
	dst = append(dst, p.Fields...)
	return append(dst, p.MAC...)
}
