package udpserve

import "encoding/binary"

// loopedPayload finds the UDP payload in a packet the kernel looped back
// to the error queue with its transmit timestamp. Such a packet holds every
// layer the device saw: an Ethernet header (loopback, veth and most NICs;
// with VLAN tags perhaps), or none (tun, WireGuard and other layer-3
// devices), then IPv4 or IPv6 and UDP. The buffer may be cut short (it
// only needs to reach the NTP header); the UDP length then runs past it
// and the payload is what is there. It returns nil when the layout is not
// recognised. The packet is our own reply, so this is no defence against
// hostile input, but it is still parsed as if it were.
//
//	+----------------------+-----------------+--------+-------------+
//	| [dst src (VLAN) type] | IPv4 or IPv6 (+ | UDP 8  | NTP payload |
//	| 14 (+4 each)          | ext. headers)   |        |             |
//	+----------------------+-----------------+--------+-------------+
func loopedPayload(b []byte) []byte {
	// Ethernet first: its type field is a more specific test than the
	// version nibble of a bare IP header, which the first octet of a MAC
	// address may mimic.
	if len(b) >= 14 {
		off := 12
		for off+4 <= len(b) && (b[off] == 0x81 && b[off+1] == 0x00 || b[off] == 0x88 && b[off+1] == 0xa8) {
			off += 4
		}
		if off+2 <= len(b) {
			switch binary.BigEndian.Uint16(b[off:]) {
			case 0x0800:
				if p := ipv4UDP(b[off+2:]); p != nil {
					return p
				}
			case 0x86dd:
				if p := ipv6UDP(b[off+2:]); p != nil {
					return p
				}
			}
		}
	}
	if len(b) > 0 {
		switch b[0] >> 4 {
		case 4:
			return ipv4UDP(b)
		case 6:
			return ipv6UDP(b)
		}
	}
	return nil
}

const udpProto = 17

func ipv4UDP(b []byte) []byte {
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != udpProto {
		return nil
	}
	ihl := int(b[0]&0xf) * 4
	if ihl < 20 || len(b) < ihl+8 {
		return nil
	}
	if frag := binary.BigEndian.Uint16(b[6:]) & 0x1fff; frag != 0 {
		return nil // a later fragment: no UDP header here
	}
	return udpPayload(b[ihl:])
}

func ipv6UDP(b []byte) []byte {
	if len(b) < 40 || b[0]>>4 != 6 {
		return nil
	}
	next := b[6]
	b = b[40:]
	// A reply of ours carries no extension headers, but the kernel could
	// add some (IPsec); skip the common ones, at most a few.
	for range 8 {
		if next == udpProto {
			return udpPayload(b)
		}
		var n int
		switch next {
		case 0, 43, 60, 135: // hop-by-hop, routing, destination, mobility
			if len(b) < 8 {
				return nil
			}
			n = 8 * (int(b[1]) + 1)
		case 44: // fragment: only the first one has the UDP header
			if len(b) < 8 || binary.BigEndian.Uint16(b[2:])>>3 != 0 {
				return nil
			}
			n = 8
		case 51: // authentication header
			if len(b) < 8 {
				return nil
			}
			n = 4 * (int(b[1]) + 2)
		default:
			return nil
		}
		if len(b) < n {
			return nil
		}
		next, b = b[0], b[n:]
	}
	return nil
}

// udpPayload returns what follows the UDP header, up to the UDP length or
// the end of b, whichever is first.
func udpPayload(b []byte) []byte {
	if len(b) < 8 {
		return nil
	}
	l := int(binary.BigEndian.Uint16(b[4:]))
	if l < 8 {
		return nil
	}
	return b[8:min(l, len(b))]
}
