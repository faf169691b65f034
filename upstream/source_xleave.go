package upstream

import (
	"errors"
	"time"

	"timegate/ntp"
)

// Interleaved mode on the client side (RFC 9769, chrony's xleave): what one
// exchange leaves for the next, and the timestamps of the next request.

// xlState is what interleaved mode carries from one exchange to the next, as chrony's
// ntp_core.c keeps it in client mode.
type xlState struct {
	// serverRx is the receive timestamp of the latest valid reply: the next request's
	// origin, and T2 of the sample the next interleaved reply completes.
	serverRx ntp.Time64
	// t1 and t4 are when that exchange's request left and its reply arrived (local).
	t1, t4 time.Time
	// sampled: that reply was in basic mode and already gave its exchange's sample,
	// so the interleaved reply that follows gives none (chrony's test A): one
	// exchange is never counted twice.
	sampled bool
	// sent counts requests since the latest valid reply (chrony's tx_count): after
	// maxXLMissed of them the server may answer with a very old transmit time, so
	// requests go out in basic mode.
	sent int
	// last says whether the latest accepted reply was interleaved.
	last bool
}

// maxXLMissed is chrony's MAX_CLIENT_INTERLEAVED_TX.
const maxXLMissed = 4

// stamps draws the timestamps of the next request: a random transmit nonce, and in
// interleaved mode, while the previous reply is recent enough, the server's receive
// timestamp from it as origin (RFC 9769) and a second random nonce as receive
// timestamp. chrony sends its own receive time there; a random value tells the server
// (and anyone watching) nothing about our clock, and matches the reply as well.
func (s *Source) stamps() (ntp.RequestStamps, error) {
	nonce, err := s.nonce()
	if err != nil {
		return ntp.RequestStamps{}, err
	}
	ts := ntp.RequestStamps{Transmit: nonce}
	if !s.cfg.Interleaved || s.xl.serverRx == 0 || s.xl.sent >= maxXLMissed {
		return ts, nil
	}
	for ts.Receive == 0 || ts.Receive == nonce {
		if ts.Receive, err = s.nonce(); err != nil {
			return ntp.RequestStamps{}, err
		}
	}
	ts.Origin = s.xl.serverRx
	return ts, nil
}

// Interleaved reports whether the latest accepted reply was in interleaved mode
// (chrony's ntpdata "Interleaved").
func (s *Source) Interleaved() bool { return s.xl.last }

// check applies the packet tests to reply as the basic answer to the outstanding
// request or, for an interleaved request, as its interleaved answer, whose sample is
// the previous exchange's completed with this reply's transmit timestamp.
func (s *Source) check(reply []byte, sent, rx time.Time) (ntp.Sample, bool, error) {
	smp, err := ntp.CheckReply(reply, s.req.version, s.req.nonce, sent, rx)
	if !errors.Is(err, ntp.ErrBogusOrigin) || s.req.rxNonce == 0 {
		return smp, false, err
	}
	xs, xerr := ntp.CheckInterleaved(reply, s.req.version, s.req.rxNonce, s.xl.serverRx, s.xl.t1, s.xl.t4)
	if errors.Is(xerr, ntp.ErrBogusOrigin) {
		return smp, false, err
	}
	return xs, true, xerr
}
