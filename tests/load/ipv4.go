package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// A spoofed request as written to the raw socket (IP_HDRINCL), 76 bytes:
//
//	 0                   1                   2                   3
//	+-------+-------+---------------+-------------------------------+
//	|Ver=4  |IHL=5  |     TOS 0     |        total length 76        |  0
//	+-------+-------+---------------+-----+-------------------------+
//	|        identification         |flags|    fragment offset 0    |  4  (DF)
//	+---------------+---------------+-----+-------------------------+
//	|    TTL 64     |  protocol 17  |       header checksum         |  8
//	+---------------+---------------+-------------------------------+
//	|                 source address (walks 127/8)                  | 12
//	|                 destination address (target)                  | 16
//	+-------------------------------+-------------------------------+
//	|          source port          |       destination port        | 20
//	|          length 56            |   checksum 0 (none, IPv4)     | 24
//	+-------------------------------+-------------------------------+
//	|                48-byte NTP request (BuildRequest)             | 28
const (
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	spoofLen      = ipv4HeaderLen + udpHeaderLen + ntpLen
	ipProtoUDP    = 17
	ipFlagDF      = 0x4000
	ipTTL         = 64
)

// Checksum is the Internet checksum of b (RFC 1071): the one's complement
// of the one's-complement sum of its 16-bit big-endian words.
func Checksum(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// BuildSpoofed writes a whole IPv4/UDP/NTP request from src:sport to
// dst:dport with transmit timestamp nonce into b (at least spoofLen bytes)
// and returns b[:spoofLen]. id is the IPv4 identification field.
func BuildSpoofed(b []byte, src, dst [4]byte, sport, dport, id uint16, nonce uint64) []byte {
	b = b[:spoofLen]
	ip, udp := b[:ipv4HeaderLen], b[ipv4HeaderLen:ipv4HeaderLen+udpHeaderLen]
	ip[0] = 4<<4 | ipv4HeaderLen/4
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:], spoofLen)
	binary.BigEndian.PutUint16(ip[4:], id)
	binary.BigEndian.PutUint16(ip[6:], ipFlagDF)
	ip[8] = ipTTL
	ip[9] = ipProtoUDP
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip))
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], udpHeaderLen+ntpLen)
	binary.BigEndian.PutUint16(udp[6:], 0)
	BuildRequest(b[ipv4HeaderLen+udpHeaderLen:], nonce)
	return b
}

// Source walk over 127.0.0.0/8.
//
// The 2^24 host numbers are visited in the order j*walkStep mod 2^24,
// j = 0, 1, 2, ...: multiplying by an odd number is a bijection modulo a
// power of two, so every address comes exactly once per 2^24 steps while
// consecutive sources land in different /24s and /16s, as in a spread-out
// spoofed flood (a sequential walk would be kinder to any cache).
// Skipped: 127.0.0.1 (the real local address, whose traffic is not ours to
// fake) and every x.y.z.0 and x.y.z.255 (network- and broadcast-like,
// including 127.0.0.0 and 127.255.255.255).
const (
	walkSpace = 1 << 24
	walkStep  = 0x9e3779 // odd: from the golden ratio, spreads well
	// MaxSources is the number of distinct addresses the walk yields:
	// 2^24 minus the 2*65536 .0/.255 addresses minus 127.0.0.1.
	MaxSources = walkSpace - 2*(walkSpace/256) - 1
)

// SourceWalk yields distinct source addresses in 127.0.0.0/8.
type SourceWalk struct{ j uint32 }

// validHost reports whether host (the low 24 bits of 127.x.y.z) may be a source.
func validHost(h uint32) bool {
	last := h & 0xff
	return last != 0 && last != 0xff && h != 1
}

// Next returns the next address as 4 bytes. After MaxSources calls it starts
// again from the first address.
func (w *SourceWalk) Next() [4]byte {
	for {
		h := w.j * walkStep % walkSpace
		w.j = (w.j + 1) % walkSpace
		if validHost(h) {
			return [4]byte{127, byte(h >> 16), byte(h >> 8), byte(h)}
		}
	}
}

// benchNet is 198.18.0.0/15, set aside for benchmarking (RFC 2544, RFC
// 6890): scripts/load.sh gives it to the veth pair joining its two network
// namespaces, so no real host can be on it.
var benchNet = netip.MustParsePrefix("198.18.0.0/15")

// loopbackTarget parses host:port and insists on a loopback address or one
// of the benchmarking network 198.18.0.0/15: the tool sends nowhere else.
func loopbackTarget(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("load: -target: %w", err)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if !ap.Addr().IsLoopback() && !benchNet.Contains(ap.Addr()) {
		return netip.AddrPort{}, fmt.Errorf("load: -target %s: only loopback (127.0.0.0/8, ::1) and benchmarking (198.18.0.0/15) targets are allowed", s)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("load: -target %s: port 0", s)
	}
	return ap, nil
}

// keSource is the local address of KE client i: each from its own /24, as
// distinct clients are (a server's caps on concurrent sessions per address
// and per /24 would otherwise refuse sessions the client has not finished
// closing). Towards loopback, 127.(1+i).0.1; towards the benchmarking
// network, 198.19.(1+i).1, which scripts/load.sh adds to its client veth.
func keSource(target netip.Addr, i int) netip.Addr {
	if benchNet.Contains(target) {
		return netip.AddrFrom4([4]byte{198, 19, byte(1 + i%250), 1})
	}
	return netip.AddrFrom4([4]byte{127, byte(1 + i%250), 0, 1})
}
