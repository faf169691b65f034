package ntp

import (
	"encoding/binary"
	"errors"
)

// HeaderLen is the size of the fixed NTP header (RFC 5905 §7.3). Anything
// shorter is not an NTP packet.
const HeaderLen = 48

// Leap is the leap indicator (RFC 5905 §7.3, Figure 9).
type Leap uint8

// Leap indicator values.
const (
	LeapNone   Leap = 0
	LeapAdd    Leap = 1 // last minute of the day has 61 seconds
	LeapDelete Leap = 2 // last minute of the day has 59 seconds
	LeapUnsync Leap = 3 // clock unsynchronized
)

// Mode is the association mode (RFC 5905 §7.3, Figure 10).
type Mode uint8

// Mode values. ModeClient requests are answered with ModeServer, and
// ModeSymmetricActive ones (w32time's default) statelessly with
// ModeSymmetricPassive unless the access policy says nopeer: no association
// is ever formed. Modes 2 and 5 are peer/broadcast traffic a gateway does
// not take from strangers, and modes 6 and 7 are the control and private
// queries behind the monlist amplification attacks (CVE-2013-5211);
// timegate has none on the network.
const (
	ModeReserved         Mode = 0
	ModeSymmetricActive  Mode = 1
	ModeSymmetricPassive Mode = 2
	ModeClient           Mode = 3
	ModeServer           Mode = 4
	ModeBroadcast        Mode = 5
	ModeControl          Mode = 6
	ModePrivate          Mode = 7
)

// Header is the fixed 48-byte NTP header (RFC 5905 §7.3):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|LI | VN  |Mode |    Stratum     |     Poll      |  Precision   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Root Delay                            |
//	|                         Root Dispersion                       |
//	|                          Reference ID                         |
//	|                     Reference Timestamp (64)                  |
//	|                      Origin Timestamp (64)                    |
//	|                      Receive Timestamp (64)                   |
//	|                      Transmit Timestamp (64)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Header struct {
	Leap           Leap
	Version        uint8
	Mode           Mode
	Stratum        uint8
	Poll           int8
	Precision      int8
	RootDelay      Time32
	RootDispersion Time32
	RefID          uint32
	RefTime        Time64
	Origin         Time64
	Receive        Time64
	Transmit       Time64
}

// ErrShort is returned for input shorter than a header.
var ErrShort = errors.New("ntp: packet shorter than 48 bytes")

// DecodeHeader reads the header from the first 48 bytes of b. It checks only
// the length: the meaning of each field is the caller's policy.
//
// The fixed layout is read at fixed offsets with encoding/binary rather than
// with cryptobyte (which the variable-length extension fields use): one
// length check covers every field, and BenchmarkDecodeHeader measures it at
// about 5 ns against about 37 ns for the cryptobyte cursor on this path.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrShort
	}
	return Header{
		Leap:           Leap(b[0] >> 6),
		Version:        (b[0] >> 3) & 7,
		Mode:           Mode(b[0] & 7),
		Stratum:        b[1],
		Poll:           int8(b[2]),
		Precision:      int8(b[3]),
		RootDelay:      Time32(binary.BigEndian.Uint32(b[4:])),
		RootDispersion: Time32(binary.BigEndian.Uint32(b[8:])),
		RefID:          binary.BigEndian.Uint32(b[12:]),
		RefTime:        Time64(binary.BigEndian.Uint64(b[16:])),
		Origin:         Time64(binary.BigEndian.Uint64(b[24:])),
		Receive:        Time64(binary.BigEndian.Uint64(b[32:])),
		Transmit:       Time64(binary.BigEndian.Uint64(b[40:])),
	}, nil
}

// Put writes h into b[:48]; b must be at least 48 bytes long.
func (h *Header) Put(b []byte) {
	_ = b[HeaderLen-1]
	b[0] = byte(h.Leap&3)<<6 | (h.Version&7)<<3 | byte(h.Mode&7)
	b[1] = h.Stratum
	b[2] = byte(h.Poll)
	b[3] = byte(h.Precision)
	binary.BigEndian.PutUint32(b[4:], uint32(h.RootDelay))
	binary.BigEndian.PutUint32(b[8:], uint32(h.RootDispersion))
	binary.BigEndian.PutUint32(b[12:], h.RefID)
	binary.BigEndian.PutUint64(b[16:], uint64(h.RefTime))
	binary.BigEndian.PutUint64(b[24:], uint64(h.Origin))
	binary.BigEndian.PutUint64(b[32:], uint64(h.Receive))
	binary.BigEndian.PutUint64(b[40:], uint64(h.Transmit))
}

// Append appends the encoded header to dst.
func (h *Header) Append(dst []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, HeaderLen)...)
	h.Put(dst[n:])
	return dst
}

// PutTransmit overwrites the transmit timestamp of an encoded header, so the
// server can read its clock as late as possible (RFC 5905 §9.2: the transmit
// timestamp should be taken immediately before the packet leaves).
func PutTransmit(b []byte, t Time64) {
	binary.BigEndian.PutUint64(b[40:48], uint64(t))
}
