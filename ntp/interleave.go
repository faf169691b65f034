package ntp

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Interleaved mode on the server side (RFC 9769), as chronyd serves it:
// the table of earlier replies' transmit times, the test for requests that
// may be interleaved, and what the Stamper does for them.

// TxTable keeps, for the replies to interleaved-capable requests, their
// receive timestamp and the time they left; interleave.Table implements it.
type TxTable interface {
	// Take returns the transmit time of the reply whose receive timestamp
	// was rx, sent to client, and forgets it; ok false when there is none.
	Take(rx Time64, client netip.Addr) (tx Time64, ok bool)
	// Save records a reply to client with receive timestamp rx, leaving at
	// about tx.
	Save(rx Time64, client netip.Addr, tx Time64)
	// UpdateTx replaces the transmit time of the reply with receive
	// timestamp rx by the kernel's, if it is plausible.
	UpdateTx(rx, tx Time64) bool
}

// interleave writes the interleaved origin and transmit timestamps, if the
// table has the previous reply's transmit time.
func (s *Stamper) interleave(header []byte) bool {
	tx, ok := s.xl.Take(s.origin, s.client)
	if ok {
		binary.BigEndian.PutUint64(header[24:32], uint64(s.receive))
		PutTransmit(header, tx&^1)
	}
	return ok
}

// interleavable says whether a request may be answered in interleaved mode
// and its reply's transmit time must be kept for the next one: chrony's
// test, an NTPv4 request with an origin that ends in 1 (one of our receive
// timestamps, or a random value) and distinct receive and transmit
// timestamps, admitted without a kiss.
func (r *Responder) interleavable(req *Header, adm Admission) bool {
	return r.Interleave != nil && adm.Action == ActionReply && req.Version == versionNTPv4 &&
		req.Origin&1 == 1 && req.Receive != req.Transmit
}

// save keeps the transmit time of a reply to an interleavable request, now,
// with everything but the send done (chrony reads its clock there too),
// and marks the verdict: TxStamp asks the edge for the kernel's transmit
// time, Interleaved says the reply was. off is where the reply's header
// starts. For other requests and dropped replies it does nothing.
func (s *Stamper) save(reply []byte, off int, v Verdict) ([]byte, Verdict) {
	// finish leaves a dropped reply's action at ActionDrop.
	if s.xl != nil && v.Action == ActionReply {
		v = s.keep(reply[off:], v)
	}
	return reply, v
}

// keep is save's work for an interleavable request; h starts with the
// reply's header.
func (s *Stamper) keep(h []byte, v Verdict) Verdict {
	rx := Time64(binary.BigEndian.Uint64(h[32:40]))
	s.xl.Save(rx, s.client, s.state.Time64(s.sys()))
	v.TxStamp = true
	v.Interleaved = Time64(binary.BigEndian.Uint64(h[24:32])) == s.receive
	return v
}

// KernelTransmit hands the edge's kernel transmit timestamp (system clock)
// of a reply it sent to the interleaved table: the next interleaved
// request of that client gets it instead of the time read before the send.
// reply is the sent datagram's NTP payload.
func (r *Responder) KernelTransmit(reply []byte, tx time.Time) bool {
	if r.Interleave == nil || len(reply) < HeaderLen {
		return false
	}
	if m := Mode(reply[0] & 7); m != ModeServer && m != ModeSymmetricPassive {
		return false
	}
	rx := Time64(binary.BigEndian.Uint64(reply[32:40]))
	if rx&1 == 0 {
		return false
	}
	return r.Interleave.UpdateTx(rx, r.State().Time64(tx)&^1)
}
