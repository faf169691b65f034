package main

import (
	"encoding/binary"
	"time"
)

// NTP packet layout used here (RFC 5905 §7.3), 48 bytes, no extensions:
//
//	 0      1      2      3
//	+------+------+------+------+
//	|LI VN M|strat | poll | prec |  byte 0: LI(2) VN(3) Mode(3)
//	+------+------+------+------+
//	| root delay, dispersion, refid (12 B)
//	+---------------------------+
//	| reference timestamp (8 B) |  16
//	| origin timestamp    (8 B) |  24  (the server echoes our transmit here)
//	| receive timestamp   (8 B) |  32
//	| transmit timestamp  (8 B) |  40  (our nonce)
//	+---------------------------+
const (
	ntpLen       = 48
	offStratum   = 1
	offPoll      = 2
	offOrigin    = 24
	offReceive   = 32
	offTransmit  = 40
	requestByte0 = 3<<6 | 4<<3 | 3 // LI 3 (unsynchronised), NTPv4, mode 3 (client), as chrony sends
	modeServer   = 4
	// requestPoll is the poll exponent we claim (64 s, chrony's default minpoll).
	requestPoll = 6
)

// BuildRequest writes a 48-byte mode-3 NTPv4 request whose transmit
// timestamp is nonce into b, which must hold at least 48 bytes.
func BuildRequest(b []byte, nonce uint64) {
	b = b[:ntpLen]
	clear(b)
	b[0] = requestByte0
	b[offPoll] = requestPoll
	binary.BigEndian.PutUint64(b[offTransmit:], nonce)
}

// ReplyKind classifies a datagram received from the server.
type ReplyKind uint8

const (
	// ReplyBad is not an NTP server reply (short, wrong mode or version).
	ReplyBad ReplyKind = iota
	// ReplyTime is a mode-4 reply with a stratum (1..16).
	ReplyTime
	// ReplyKoD is a mode-4 Kiss-o'-Death (stratum 0).
	ReplyKoD
)

// ParseReply returns the kind of reply b is and its origin timestamp.
func ParseReply(b []byte) (ReplyKind, uint64) {
	if len(b) < ntpLen {
		return ReplyBad, 0
	}
	vn := b[0] >> 3 & 7
	if b[0]&7 != modeServer || vn < 3 || vn > 4 {
		return ReplyBad, 0
	}
	origin := binary.BigEndian.Uint64(b[offOrigin:])
	if b[offStratum] == 0 {
		return ReplyKoD, origin
	}
	return ReplyTime, origin
}

// Residence is how long the server held a request by its own clock:
// the reply's transmit timestamp minus its receive timestamp. Unlike the
// round trip, it does not include the load tool's own scheduling, which
// shares the load core with the NTS-KE clients of the "beside NTS-KE"
// runs. ok is false without both timestamps (the echo server sets
// neither); a negative difference counts as zero.
func Residence(b []byte) (d time.Duration, ok bool) {
	if len(b) < ntpLen {
		return 0, false
	}
	rx, tx := binary.BigEndian.Uint64(b[offReceive:]), binary.BigEndian.Uint64(b[offTransmit:])
	if rx == 0 || tx == 0 {
		return 0, false
	}
	diff := int64(tx - rx) // NTP 32.32 seconds; modular, so an era change is harmless
	if diff <= 0 {
		return 0, true
	}
	return time.Duration(float64(diff) * 1e9 / (1 << 32)), true
}

// putTransmit rewrites the transmit timestamp of a request built by
// BuildRequest.
func putTransmit(b []byte, nonce uint64) {
	binary.BigEndian.PutUint64(b[offTransmit:], nonce)
}
