package kelisten

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"timegate/nts"
)

// Stats counts what happened to NTS-KE connections since New.
type Stats struct {
	Accepted         uint64 // connections accepted from the socket
	Active           uint64 // sessions running now
	RefusedTotalCap  uint64 // evicted: idle before its handshake while MaxConns sessions ran
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

	// Latency is how long sessions that issued keys took, from accept to
	// the last record written: TLS handshake plus negotiation.
	Latency Histogram
}

// Names of refusals and failures, stable: they are metric label values and
// `gatectl serverstats` rows.
const (
	RefusedTotalCap  = "total-cap"
	RefusedSourceCap = "source-cap"
	RefusedRate      = "rate-limit"

	FailedHandshake     = "handshake"
	FailedALPN          = "alpn"
	FailedVersion       = "tls-version"
	FailedTimeout       = "timeout"
	FailedIO            = "io"
	FailedNoCommon      = "no-common"
	FailedUnrecognized  = "unrecognized-critical"
	FailedBadRequest    = "bad-request"
	FailedInternalError = "internal"
)

// RefusedByReason names the refusals (connections closed before any TLS
// work); every name is present, zero or not.
func (s *Stats) RefusedByReason() map[string]uint64 {
	return map[string]uint64{
		RefusedTotalCap:  s.RefusedTotalCap,
		RefusedSourceCap: s.RefusedSourceCap,
		RefusedRate:      s.RefusedRate,
	}
}

// FailedByReason names the sessions that did not end with keys; every name
// is present, zero or not, so that a series exists before its first event.
func (s *Stats) FailedByReason() map[string]uint64 {
	return map[string]uint64{
		FailedHandshake:     s.Handshake,
		FailedALPN:          s.BadALPN,
		FailedVersion:       s.BadVersion,
		FailedTimeout:       s.Timeouts,
		FailedIO:            s.IOErrors,
		FailedNoCommon:      s.NoCommon,
		FailedUnrecognized:  s.Errors[nts.CodeUnrecognizedCritical],
		FailedBadRequest:    s.Errors[nts.CodeBadRequest],
		FailedInternalError: s.Errors[nts.CodeInternalServerError],
	}
}

type counters struct {
	accepted, refusedTotalCap, refusedSourceCap, refusedRate, acceptErrors atomic.Uint64
	handshake, badALPN, badVersion, timeouts, ioErrors                     atomic.Uint64
	served, noCommon                                                       atomic.Uint64
	errors                                                                 [3]atomic.Uint64
	latency                                                                histogram
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

// FailureName names a failure reason code for logs and audit records, with
// the names `gatectl serverstats` and the metrics use.
func FailureName(code uint8) string {
	names := [numFailures]string{"none", FailedNoCommon, "error-record", FailedALPN,
		FailedVersion, FailedTimeout, FailedHandshake, FailedIO, RefusedRate, RefusedSourceCap, RefusedTotalCap}
	if code < numFailures {
		return names[code]
	}
	return "unknown"
}

// record classifies the result of nts.ServeConn, whose session lasted took,
// and returns the failure reason (FailNone when the session was served).
func (c *counters) record(err error, took time.Duration) uint8 {
	var pe *nts.ProtocolError
	var ne net.Error
	switch {
	case err == nil:
		c.served.Add(1)
		c.latency.observe(took)
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
		Latency: c.latency.snapshot(),
	}
	for i := range c.errors {
		s.Errors[i] = c.errors[i].Load()
	}
	s.Active = uint64(l.slots.running())
	return s
}

// AddStats sums the counters of two listeners (NTS-KE helper processes,
// each with its own). Latency histograms share their bounds, so bucket
// counts add.
func AddStats(a, b Stats) Stats {
	a.Accepted += b.Accepted
	a.Active += b.Active
	a.RefusedTotalCap += b.RefusedTotalCap
	a.RefusedSourceCap += b.RefusedSourceCap
	a.RefusedRate += b.RefusedRate
	a.AcceptErrors += b.AcceptErrors
	a.Handshake += b.Handshake
	a.BadALPN += b.BadALPN
	a.BadVersion += b.BadVersion
	a.Timeouts += b.Timeouts
	a.IOErrors += b.IOErrors
	a.Served += b.Served
	a.NoCommon += b.NoCommon
	for i := range a.Errors {
		a.Errors[i] += b.Errors[i]
	}
	for i := range a.Latency.Cumulative {
		a.Latency.Cumulative[i] += b.Latency.Cumulative[i]
	}
	for i, b := range latencyBounds() { // a zero Stats has none yet
		a.Latency.Bounds[i] = b.Seconds()
	}
	a.Latency.Count += b.Latency.Count
	a.Latency.Sum += b.Latency.Sum
	return a
}
