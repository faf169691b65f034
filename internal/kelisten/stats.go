package kelisten

import (
	"errors"
	"net"
	"sync/atomic"

	"timegate/nts"
)

// Stats counts what happened to NTS-KE connections since New.
type Stats struct {
	Accepted         uint64 // connections accepted from the socket
	Active           uint64 // sessions running now
	RefusedTotalCap  uint64 // closed at once: MaxConns sessions running
	RefusedSourceCap uint64 // closed at once: the source had its share
	RefusedRate      uint64 // closed at once: Allow said no
	AcceptErrors     uint64 // failed accepts (EMFILE...), each backed off

	Handshake  uint64 // TLS handshake failed (includes wrong ALPN)
	BadALPN    uint64 // handshake done without "ntske/1"
	BadVersion uint64 // handshake done below TLS 1.3
	Timeouts   uint64 // session cut at the deadline (slow or idle client)
	IOErrors   uint64 // reset, closed early, truncated

	Served   uint64    // keys and cookies issued
	NoCommon uint64    // well-formed refusal: no NTPv4 or no common AEAD
	Errors   [3]uint64 // Error records sent, by code (RFC 8915 §4.1.3)
}

type counters struct {
	accepted, refusedTotalCap, refusedSourceCap, refusedRate, acceptErrors atomic.Uint64
	handshake, badALPN, badVersion, timeouts, ioErrors                     atomic.Uint64
	served, noCommon                                                       atomic.Uint64
	errors                                                                 [3]atomic.Uint64
}

// Failure reasons reported to Config.OnFailure, by code.
const (
	FailNone uint8 = iota
	FailNoCommon
	FailErrorRecord
	FailALPN
	FailTLSVersion
	FailTimeout
	FailHandshake
	FailIO
	FailRate      // refused before TLS: ntsratelimit
	FailSourceCap // refused before TLS: the source had its share of sessions
	FailTotalCap  // refused before TLS: all sessions in use
	numFailures
)

// FailureName names a failure reason code for logs and audit records.
func FailureName(code uint8) string {
	names := [numFailures]string{"none", "no-common-protocol-or-aead", "error-record", "bad-alpn",
		"bad-tls-version", "timeout", "handshake", "io", "rate-limited", "source-cap", "total-cap"}
	if code < numFailures {
		return names[code]
	}
	return "unknown"
}

// record classifies the result of nts.ServeConn and returns the failure
// reason (FailNone when the session was served).
func (c *counters) record(err error) uint8 {
	var pe *nts.ProtocolError
	var ne net.Error
	switch {
	case err == nil:
		c.served.Add(1)
		return FailNone
	case errors.Is(err, nts.ErrNoCommonProtocol), errors.Is(err, nts.ErrNoCommonAEAD):
		c.noCommon.Add(1)
		return FailNoCommon
	case errors.As(err, &pe) && int(pe.Code) < len(c.errors):
		c.errors[pe.Code].Add(1)
		return FailErrorRecord
	case errors.Is(err, nts.ErrALPN):
		c.badALPN.Add(1)
		return FailALPN
	case errors.Is(err, nts.ErrTLSVersion):
		c.badVersion.Add(1)
		return FailTLSVersion
	case errors.As(err, &ne) && ne.Timeout():
		c.timeouts.Add(1)
		return FailTimeout
	case errors.Is(err, nts.ErrHandshake):
		c.handshake.Add(1)
		return FailHandshake
	default:
		c.ioErrors.Add(1)
		return FailIO
	}
}

// Stats returns a snapshot of the counters.
func (l *Listener) Stats() Stats {
	c := &l.stats
	s := Stats{
		Accepted: c.accepted.Load(), RefusedTotalCap: c.refusedTotalCap.Load(),
		RefusedSourceCap: c.refusedSourceCap.Load(), RefusedRate: c.refusedRate.Load(),
		AcceptErrors: c.acceptErrors.Load(), Handshake: c.handshake.Load(),
		BadALPN: c.badALPN.Load(), BadVersion: c.badVersion.Load(),
		Timeouts: c.timeouts.Load(), IOErrors: c.ioErrors.Load(),
		Served: c.served.Load(), NoCommon: c.noCommon.Load(),
	}
	for i := range c.errors {
		s.Errors[i] = c.errors[i].Load()
	}
	l.mu.Lock()
	s.Active = uint64(l.active)
	l.mu.Unlock()
	return s
}
