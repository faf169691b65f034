package upstream

import (
	"crypto/md5"
	"encoding/binary"
	"math"
	"net/netip"
	"time"
)

// Protocol constants from RFC 5905 §7.2 and Appendix A.1.1.
const (
	// PHI is the frequency tolerance (15 ppm) RFC 5905 assumes of every clock: the rate at
	// which the error bound of a reading grows while it ages, so dispersion grows by
	// PHI·elapsed and a source that stops answering becomes less trusted by itself.
	PHI = 15e-6

	// MaxDisp is MAXDISP (16 s): the dispersion of an empty filter stage and the root
	// dispersion an unsynchronised server reports. A value this large means "no bound".
	MaxDisp = 16 * time.Second

	// MinDisp is the floor on the delay and dispersion terms of a root distance. RFC 5905
	// suggests a tunable 10 ms; timegate uses ntpd's MINDISPERSE of 1 ms so that sources on
	// a LAN are still told apart by delay. The floor keeps 1/distance weights finite and stops
	// a source with zero claimed error from dominating every combination.
	MinDisp = time.Millisecond

	// MaxStratum is MAXSTRAT (16): "unsynchronised"; a source at or above it is never used.
	MaxStratum = 16

	// NStage is the depth of the clock filter shift register (RFC 5905 §10).
	NStage = 8

	// SGate is the popcorn spike gate (RFC 5905 §10): an offset that jumps by more than SGate
	// times the jitter within two poll intervals is held back as a probable spike.
	SGate = 3
)

// Leap is the two-bit leap indicator of RFC 5905 §7.3.
type Leap uint8

// Leap indicator values.
const (
	LeapNone    Leap = 0 // no warning
	LeapInsert  Leap = 1 // last minute of the day has 61 seconds
	LeapDelete  Leap = 2 // last minute of the day has 59 seconds
	LeapUnsynch Leap = 3 // clock unsynchronised
)

// Candidate is one source as the selection algorithms see it: its filtered statistics and
// the header fields of its latest packet. Filter.Candidate builds one; the caller fills in
// ID, RefID and Prefer, which come from configuration and the source's address, and passes
// only reachable, authenticated sources (RFC 5905 accept(): reach ≠ 0).
type Candidate struct {
	// ID identifies the source across calls (for clock-hop avoidance); 0 means "none".
	ID uint64
	// Stats is the clock filter output (RFC 5905 §10).
	Stats Stats
	// RootDelay and RootDispersion are the source's own distance to its primary reference,
	// from its latest packet header.
	RootDelay      time.Duration
	RootDispersion time.Duration
	Stratum        uint8
	Leap           Leap
	// RefID is the reference identifier the gateway serves when this source is the system
	// peer: RefIDForAddr of the source's address (RFC 5905 §7.3).
	RefID uint32
	// Prefer marks a source configured with "prefer": it is never pruned by clustering and
	// becomes the system peer whenever it survives (RFC 5905 §11.2.3, ntpd's prefer peer).
	Prefer bool
	// Trust and Require are chrony's server options (trust.go): a trusted source can be
	// outvoted only by other trusted ones; while some source is required, one of the
	// required must be a truechimer.
	Trust, Require bool
}

// RootDistance is λ, the maximum error of this source's time relative to its primary
// reference as of now (RFC 5905 §11.2.2, root_dist in Appendix A.5.5.2):
//
//	λ = max(MINDISP, rootdelay + δ)/2 + rootdisp + ε + PHI·(now − t) + ψ
//
// where t is when the filter last updated ε. It is the half-width of the source's
// correctness interval in selection and the inverse weight in combining.
func (c *Candidate) RootDistance(now time.Time) time.Duration {
	return dur(c.distance(now))
}

// distance is RootDistance in seconds.
func (c *Candidate) distance(now time.Time) float64 {
	delay := max(MinDisp.Seconds(), (c.RootDelay + c.Stats.Delay).Seconds())
	age := max(0, now.Sub(c.Stats.Updated).Seconds())
	return delay/2 + c.RootDispersion.Seconds() + c.Stats.Dispersion.Seconds() +
		PHI*age + c.Stats.Jitter.Seconds()
}

// RefIDForAddr is the reference identifier a server synchronised to addr reports
// (RFC 5905 §7.3): the IPv4 address itself, or for IPv6 the first four octets of the MD5
// hash of the address. MD5 is the RFC's choice of a short, stable identifier, not a
// security measure. An IPv4-mapped IPv6 address counts as IPv4.
func RefIDForAddr(addr netip.Addr) uint32 {
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := addr.As16()
	sum := md5.Sum(b[:])
	return binary.BigEndian.Uint32(sum[:4])
}

// secondsPerDurationLimit bounds conversions back to time.Duration so that a hostile or
// absurd value saturates instead of wrapping around.
const secondsPerDurationLimit = float64(math.MaxInt64) / 1e9

// dur converts float64 seconds to a time.Duration, rounding to the nanosecond and
// saturating at the Duration range; NaN becomes 0.
func dur(s float64) time.Duration {
	switch {
	case math.IsNaN(s):
		return 0
	case s >= secondsPerDurationLimit:
		return math.MaxInt64
	case s <= -secondsPerDurationLimit:
		return math.MinInt64
	}
	return time.Duration(math.Round(s * 1e9))
}
