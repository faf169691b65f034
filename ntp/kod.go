package ntp

import "net/netip"

// KissCode is the ASCII kiss code a Kiss-o'-Death packet carries in its
// reference ID (RFC 5905 §7.4). Stratum 0 marks the packet as a kiss.
type KissCode uint32

// Kiss codes timegate sends or understands.
const (
	KissRATE KissCode = 'R'<<24 | 'A'<<16 | 'T'<<8 | 'E' // reduce your poll rate
	KissDENY KissCode = 'D'<<24 | 'E'<<16 | 'N'<<8 | 'Y' // access denied, stop
	KissRSTR KissCode = 'R'<<24 | 'S'<<16 | 'T'<<8 | 'R' // access restricted, stop
	KissNTSN KissCode = 'N'<<24 | 'T'<<16 | 'S'<<8 | 'N' // NTS NAK: cookie did not open, redo NTS-KE (RFC 8915 §5.7)
)

// String returns the four ASCII characters of the code.
func (k KissCode) String() string {
	b := [4]byte{byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return "????"
		}
	}
	return string(b[:])
}

// KissHeader returns the header of a kiss answering req: stratum 0, leap 3,
// the kiss code as reference ID and the request's transmit timestamp echoed as
// origin so that the client can tell the kiss belongs to its request (RFC 5905
// §7.4, RFC 8915 §5.7). Receive and transmit stay zero: a kiss carries no time,
// and a client must not use it as a sample.
func KissHeader(req *Header, code KissCode) Header {
	return Header{
		Leap:     LeapUnsync,
		Version:  req.Version,
		Mode:     ModeServer,
		Stratum:  0,
		Poll:     clampPoll(req.Poll),
		RefID:    uint32(code),
		Origin:   req.Transmit,
		Receive:  0,
		Transmit: 0,
	}
}

// IsKiss reports whether h is a Kiss-o'-Death and returns its code.
func IsKiss(h *Header) (KissCode, bool) {
	if h.Mode != ModeServer || h.Stratum != 0 {
		return 0, false
	}
	return KissCode(h.RefID), true
}

// Poll exponents outside this range are nonsense; echoing them back would let
// a client make us claim an absurd poll interval. chrony accepts -7..24.
const (
	minPoll = -7
	maxPoll = 17
)

func clampPoll(p int8) int8 {
	switch {
	case p < minPoll:
		return minPoll
	case p > maxPoll:
		return maxPoll
	}
	return p
}

// RefIDString renders a reference ID as RFC 5905 §7.3 defines it: four ASCII
// characters at stratum 0 and 1 (and 16, where ntpd and timegate put a state code
// such as INIT), else an IPv4 address (or the hash of an IPv6 one, which looks the
// same), as chronyc and ntpq print it.
func RefIDString(stratum uint8, id uint32) string {
	if stratum <= 1 || stratum >= 16 {
		return KissCode(id).String()
	}
	return netip.AddrFrom4([4]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}).String()
}
