package nts

import (
	"encoding/binary"

	"golang.org/x/crypto/cryptobyte"
)

// RecordType is the 15-bit NTS-KE record type (RFC 8915 §4, IANA "Network
// Time Security Key Establishment Record Types").
type RecordType uint16

// Record types of RFC 8915 §4.1.
const (
	RecEndOfMessage RecordType = 0 // §4.1.1
	RecNextProtocol RecordType = 1 // §4.1.2
	RecError        RecordType = 2 // §4.1.3
	RecWarning      RecordType = 3 // §4.1.4
	RecAEAD         RecordType = 4 // §4.1.5
	RecNewCookie    RecordType = 5 // §4.1.6
	RecServer       RecordType = 6 // §4.1.7
	RecPort         RecordType = 7 // §4.1.8
)

// Protocol and algorithm identifiers used by this package.
const (
	// ProtocolNTPv4 is the NTS Next Protocol id of NTPv4 (RFC 8915 §7.7).
	ProtocolNTPv4 uint16 = 0
	// AEADAESSIVCMAC256 is AEAD_AES_SIV_CMAC_256 (RFC 5297), which every
	// NTS server MUST support (RFC 8915 §4.1.5).
	AEADAESSIVCMAC256 uint16 = 15
	// AEADAES128GCMSIV is AEAD_AES_128_GCM_SIV (RFC 8452), as chrony 4.4+
	// and facebook/time offer it: 16-byte keys, so cookies 32 octets
	// shorter, which passes length-based NTP filters on the Internet.
	AEADAES128GCMSIV uint16 = 30
	// DefaultNTPPort is the port a client uses when the response carries no
	// Port Negotiation record (RFC 8915 §4.1.8).
	DefaultNTPPort uint16 = 123
)

// Limits on NTS-KE messages. Everything here is read from a peer that has not
// yet proved anything but a TLS handshake, so every count and size is capped.
const (
	// MaxRequestSize caps the bytes a server buffers for one request. A full
	// request (Next Protocol, an AEAD list, Server with a 255-byte name,
	// Port, End of Message) needs under 300 bytes; 1024 leaves room for
	// unknown non-critical records while bounding the memory an
	// unauthenticated client can pin per connection (issue 5: KE exhaustion).
	MaxRequestSize = 1024
	// MaxResponseSize caps what a client buffers: chrony's whole-message
	// buffer (NKE_MAX_MESSAGE_LENGTH). Our own responses stay under 1300 bytes.
	MaxResponseSize = 16384
	// MaxRequestRecords bounds per-request work: a request needs at most 5
	// records (Next Protocol, AEAD, Server, Port, End of Message).
	MaxRequestRecords = 32
	// MaxResponseRecords bounds what a client walks: 8 cookies plus 6 other
	// record types plus room for unknown non-critical ones.
	MaxResponseRecords = 64
	// MaxServerNameLen is the longest Server Negotiation body: a DNS name
	// is at most 255 octets (RFC 1035 §2.3.4), an IP literal far less.
	MaxServerNameLen = 255
	// MaxCookies is the number of New Cookie records a server sends and the
	// most a client accepts (RFC 8915 §4.1.6 and §5.7 recommend 8).
	MaxCookies = 8
	// MaxCookieLen bounds a received cookie (chrony's NKE_MAX_COOKIE_LENGTH):
	// a cookie travels in every NTP request, so a longer one is useless.
	MaxCookieLen = 256

	recordHeaderLen = 4
	criticalBit     = 0x8000
)

// Record is one NTS-KE record (RFC 8915 §4):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-----------------------------+-------------------------------+
//	|C|         Record Type         |          Body Length          |
//	+-+-----------------------------+-------------------------------+
//	|                     Body (Body Length octets)                 |
//	+---------------------------------------------------------------+
//
// Body aliases the parsed message: copy it to keep it past the buffer.
type Record struct {
	Type     RecordType
	Critical bool
	Body     []byte
}

// EndOfMessage is the record that closes every message; its critical bit
// MUST be set and its body MUST be empty (RFC 8915 §4.1.1).
func EndOfMessage() Record { return Record{Type: RecEndOfMessage, Critical: true} }

// NextProtocolRecord lists protocol ids; critical bit MUST be set (RFC 8915 §4.1.2).
func NextProtocolRecord(ids ...uint16) Record {
	return Record{Type: RecNextProtocol, Critical: true, Body: uint16s(ids)}
}

// AEADRecord lists AEAD ids. We set the critical bit, which RFC 8915 §4.1.5
// allows: a peer that cannot read it must not proceed.
func AEADRecord(ids ...uint16) Record {
	return Record{Type: RecAEAD, Critical: true, Body: uint16s(ids)}
}

// ErrorRecord carries code; critical bit set (RFC 8915 §4.1.3).
func ErrorRecord(code ErrorCode) Record {
	return Record{Type: RecError, Critical: true, Body: uint16s([]uint16{uint16(code)})}
}

// WarningRecord carries code; critical bit set (RFC 8915 §4.1.4).
func WarningRecord(code uint16) Record {
	return Record{Type: RecWarning, Critical: true, Body: uint16s([]uint16{code})}
}

// CookieRecord carries one cookie; the critical bit SHOULD NOT be set
// (RFC 8915 §4.1.6).
func CookieRecord(cookie []byte) Record { return Record{Type: RecNewCookie, Body: cookie} }

// ServerRecord names the NTP server (RFC 8915 §4.1.7). Critical, like chrony
// and ntpd-rs: a client that ignored it would talk to the wrong host.
func ServerRecord(name string) Record {
	return Record{Type: RecServer, Critical: true, Body: []byte(name)}
}

// PortRecord names the NTP port (RFC 8915 §4.1.8); critical for the same
// reason as ServerRecord.
func PortRecord(port uint16) Record {
	return Record{Type: RecPort, Critical: true, Body: uint16s([]uint16{port})}
}

// ErrorResponse is the whole response refusing a request with code.
func ErrorResponse(code ErrorCode) []Record {
	return []Record{ErrorRecord(code), EndOfMessage()}
}

func uint16s(vs []uint16) []byte {
	b := make([]byte, 2*len(vs))
	for i, v := range vs {
		binary.BigEndian.PutUint16(b[2*i:], v)
	}
	return b
}

// ParseRequest splits a request received by a server into records, with the
// request limits. It checks framing only: every record complete, End of
// Message present and last, nothing after it. Meaning is Negotiate's job.
func ParseRequest(msg []byte) ([]Record, error) {
	return parseMessage(msg, MaxRequestSize, MaxRequestRecords)
}

// ParseResponse is ParseRequest for a response received by a client, with
// the response limits.
func ParseResponse(msg []byte) ([]Record, error) {
	return parseMessage(msg, MaxResponseSize, MaxResponseRecords)
}

func parseMessage(msg []byte, maxSize, maxRecords int) ([]Record, error) {
	if len(msg) > maxSize {
		return nil, ErrMessageTooLarge
	}
	s := cryptobyte.String(msg)
	var recs []Record
	for !s.Empty() {
		if len(recs) == maxRecords {
			return nil, ErrTooManyRecords
		}
		var typ uint16
		var body cryptobyte.String
		if !s.ReadUint16(&typ) || !s.ReadUint16LengthPrefixed(&body) {
			return nil, ErrTruncated
		}
		r := Record{Type: RecordType(typ &^ criticalBit), Critical: typ&criticalBit != 0, Body: body}
		recs = append(recs, r)
		if r.Type == RecEndOfMessage {
			if !s.Empty() {
				return nil, ErrDataAfterEnd
			}
			return recs, nil
		}
	}
	return nil, ErrNoEndOfMessage
}

// messageLen reports the length of the first complete message in buf, or 0
// when buf holds only a prefix of one. A stream reader calls it after each
// read, so that it stops at End of Message without a second parse.
func messageLen(buf []byte) int {
	off := 0
	for len(buf)-off >= recordHeaderLen {
		typ := binary.BigEndian.Uint16(buf[off:])
		end := off + recordHeaderLen + int(binary.BigEndian.Uint16(buf[off+2:]))
		if end > len(buf) {
			return 0
		}
		off = end
		if RecordType(typ&^criticalBit) == RecEndOfMessage {
			return off
		}
	}
	return 0
}

// AppendMessage appends the wire form of recs to dst. It fails on a type
// that does not fit 15 bits or a body longer than 65535 bytes.
func AppendMessage(dst []byte, recs []Record) ([]byte, error) {
	b := cryptobyte.NewBuilder(dst)
	for _, r := range recs {
		typ := uint16(r.Type)
		if typ&criticalBit != 0 {
			return nil, ErrRecordType
		}
		if r.Critical {
			typ |= criticalBit
		}
		b.AddUint16(typ)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.Body) })
	}
	return b.Bytes()
}
