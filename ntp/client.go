package ntp

import (
	"errors"
	"time"
)

// Reply sanity errors (RFC 5905 §8 packet tests, as a client applies them).
var (
	ErrNotServer     = errors.New("ntp: reply is not mode 4")
	ErrBogusOrigin   = errors.New("ntp: reply origin does not match our request (spoofed, stale or duplicate)")
	ErrZeroTransmit  = errors.New("ntp: reply transmit timestamp is zero")
	ErrBadStratum    = errors.New("ntp: reply stratum outside 1..15")
	ErrKiss          = errors.New("ntp: server sent a Kiss-o'-Death")
	ErrUnsynced      = errors.New("ntp: server is not synchronised (leap 3)")
	ErrBadVersion    = errors.New("ntp: reply version differs from the request")
	ErrNegativeDelay = errors.New("ntp: reply implies a negative round-trip delay")
)

// Sample is one measurement from a client exchange (RFC 5905 §8):
// offset θ = ((T2−T1) + (T3−T4))/2 and delay δ = (T4−T1) − (T3−T2).
type Sample struct {
	Offset time.Duration
	Delay  time.Duration
	// Header is the server's reply header (stratum, refid, root delay and
	// dispersion, leap, precision).
	Header Header
}

// RootDistance is the RFC 5905 §11.2 synchronisation distance of the sample
// alone: half the total round-trip delay to the primary source plus the
// accumulated dispersion, the bound on how wrong the time may be.
func (s *Sample) RootDistance() time.Duration {
	return (s.Header.RootDelay.Duration()+s.Delay)/2 + s.Header.RootDispersion.Duration()
}

// ClientRequest appends a mode-3 request whose transmit timestamp is nonce.
// Clients should use a random nonce rather than their clock (RFC 9109 §3 /
// draft-ietf-ntp-data-minimization): it hides the client's time and makes
// off-path spoofing of replies a 64-bit guess.
func ClientRequest(dst []byte, version uint8, poll int8, nonce Time64) []byte {
	return ClientRequestStamps(dst, version, poll, RequestStamps{Transmit: nonce})
}

// RequestStamps are the three timestamps a client request carries. In
// basic mode only Transmit is set (a random nonce). An interleaved request
// (RFC 9769) also echoes, as Origin, the receive timestamp of the server's
// previous reply, and carries a second nonce as Receive, which the server
// returns as the origin of an interleaved reply.
type RequestStamps struct {
	Origin, Receive, Transmit Time64
}

// ClientRequestStamps appends a mode-3 request carrying ts.
func ClientRequestStamps(dst []byte, version uint8, poll int8, ts RequestStamps) []byte {
	h := Header{Leap: LeapUnsync, Version: version, Mode: ModeClient, Poll: poll,
		Origin: ts.Origin, Receive: ts.Receive, Transmit: ts.Transmit}
	return h.Append(dst)
}

// CheckReply applies a client's packet tests to a reply to the request whose
// transmit timestamp was nonce, sent at t1 and answered at t4 (local clock).
// A Kiss-o'-Death returns ErrKiss with the header filled so the caller can
// read its code; the caller must still decide whether the kiss is
// authenticated before acting on it.
func CheckReply(reply []byte, version uint8, nonce Time64, t1, t4 time.Time) (Sample, error) {
	return checkClientReply(reply, version, nonce, 0, t1, t4)
}

// CheckInterleaved applies the same tests to a reply in interleaved mode
// (RFC 9769): its origin must be rxNonce, the Receive value of the
// request it answers, and its transmit timestamp is the time the server's
// previous reply left. The sample is that previous exchange's: t1 when the
// previous request left, t2 the server's receive timestamp in the previous
// reply, t4 when the previous reply arrived (local clock).
func CheckInterleaved(reply []byte, version uint8, rxNonce, t2 Time64, t1, t4 time.Time) (Sample, error) {
	if t2 == 0 {
		return Sample{}, ErrBogusOrigin
	}
	return checkClientReply(reply, version, rxNonce, t2, t1, t4)
}

// checkClientReply is CheckReply, with the receive timestamp t2 given (not 0)
// for an interleaved reply.
func checkClientReply(reply []byte, version uint8, origin, t2Stamp Time64, t1, t4 time.Time) (Sample, error) {
	p, err := Parse(reply)
	if err != nil {
		return Sample{}, err
	}
	h := p.Header
	s := Sample{Header: h}
	switch {
	case h.Mode != ModeServer:
		return s, ErrNotServer
	case h.Version != version:
		return s, ErrBadVersion
	case h.Origin != origin || origin == 0:
		return s, ErrBogusOrigin
	case h.Stratum == 0:
		return s, ErrKiss
	case h.Transmit == 0:
		return s, ErrZeroTransmit
	}
	if t2Stamp == 0 {
		t2Stamp = h.Receive
	}
	t2 := t2Stamp.Time(t1)
	t3 := h.Transmit.Time(t1)
	s.Offset = (t2.Sub(t1) + t3.Sub(t4)) / 2
	s.Delay = t4.Sub(t1) - t3.Sub(t2)
	if s.Delay < 0 {
		// Clock resolution can make a loopback exchange look a few ns
		// negative; anything more means a lying timestamp.
		if s.Delay < -time.Millisecond {
			return s, ErrNegativeDelay
		}
		s.Delay = 0
	}
	// The measurement is still filled in for an unsynchronised server, so
	// a diagnostic tool can show what it says.
	if h.Stratum > 15 {
		return s, ErrBadStratum
	}
	if h.Leap == LeapUnsync {
		return s, ErrUnsynced
	}
	return s, nil
}
