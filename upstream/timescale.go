package upstream

import (
	"math"
	"time"
)

// RefIDInit is the reference ID an unsynchronised gateway reports: the ASCII kiss code
// "INIT" (RFC 5905 §7.4, "has not yet synchronized").
const RefIDInit uint32 = 'I'<<24 | 'N'<<16 | 'I'<<8 | 'T'

// segment is one piece of a piecewise-linear correction law, in seconds, over time t:
//
//	corr(t) = base + freq·(t − start) + sign(slew)·min(|slew|, rate·(t − start))
//
// base is the correction at start, freq the rate it changes at (the frequency error being
// compensated), and slew an offset being amortised at rate on top. The zero segment is a
// zero correction.
type segment struct {
	start                  time.Time
	base, freq, slew, rate float64
}

// at evaluates the law at t. Before start it extrapolates the frequency term only.
func (s *segment) at(t time.Time) float64 {
	if s.start.IsZero() {
		return s.base
	}
	dt := t.Sub(s.start).Seconds()
	return s.base + s.freq*dt + (s.slew - s.pendingAfter(dt))
}

// pending returns the part of the slew not yet applied at t.
func (s *segment) pending(t time.Time) float64 {
	if s.start.IsZero() {
		return s.slew
	}
	return s.pendingAfter(t.Sub(s.start).Seconds())
}

func (s *segment) pendingAfter(dt float64) float64 {
	done := max(0, s.rate*dt)
	if done >= math.Abs(s.slew) {
		return 0
	}
	return s.slew - math.Copysign(done, s.slew)
}

// Snapshot is an immutable view of a SoftClock, safe to share between goroutines: the
// edge publishes SoftClock.Snapshot through an atomic.Pointer after every update, and the
// server path calls Now on it per packet.
type Snapshot struct {
	corr segment // served − local, over local time
	kern segment // system − local, over system time: what a Discipliner was told to do

	synced   bool      // an estimate has been accepted
	holdover bool      // sources were lost since the last fresh estimate
	reason   Reason    // why sources were lost or refused
	est      Estimate  // the last accepted estimate
	estAt    time.Time // local time est was accepted (the last fresh estimate)
	refTime  time.Time // served time of the last fresh estimate
	limit    time.Duration

	// Until the fit has a slope, the clock runs at a guessed frequency that may be off by
	// up to freqUnknown, for the time since the fitted points (fitMean). Once it has one,
	// the remaining frequency error is taken to be within PHI, as RFC 5905 assumes of a
	// disciplined clock.
	freqUnknown float64
	fitMean     time.Time
	// skew is the frequency's uncertainty: freqUnknown, or the fitted slope's error.
	skew float64
}

// Local maps a system clock reading to local time, the timescale samples are measured in:
// the system time minus every correction timegate has told a Discipliner to make. Without a
// Discipliner it is sys itself. The monotonic reading of sys is dropped: offsets are
// measured against the wall clock.
func (s *Snapshot) Local(sys time.Time) time.Time {
	sys = sys.Round(0)
	if s.kern.start.IsZero() && s.kern.base == 0 {
		return sys
	}
	return sys.Add(-dur(s.kern.at(sys)))
}

// Now maps a system clock reading to the time the gateway serves.
func (s *Snapshot) Now(sys time.Time) time.Time {
	local := s.Local(sys)
	return local.Add(dur(s.corr.at(local)))
}

// Status is what the server needs to fill the header of its replies (RFC 5905 §7.3), and
// what an operator wants to see.
type Status struct {
	// Synchronised is false before the first accepted estimate, and once the holdover limit
	// has passed without a fresh one; the server then sends leap 3 and stratum 16.
	Synchronised bool
	// Holdover is true while the clock free-runs on its last frequency estimate because the
	// sources were lost or refused.
	Holdover bool
	Leap     Leap
	// Stratum is the system peer's stratum + 1, or MaxStratum when unsynchronised.
	Stratum uint8
	RefID   uint32
	// RootDelay and RootDispersion bound the served time's error: RootDelay/2 +
	// RootDispersion ≥ |served − true|. The dispersion includes PHI·(time since the last
	// estimate), the correction still being slewed in, and, until a frequency has been
	// fitted, MaxFreq times the age of the estimates the clock runs on.
	RootDelay      time.Duration
	RootDispersion time.Duration
	// RefTime is the served time of the last fresh estimate (the reference timestamp).
	RefTime time.Time
	// Age is the time since the last fresh estimate.
	Age time.Duration
	// Offset is served time minus system time; Frequency the estimated rate of change of
	// that correction (s/s), i.e. the frequency error of the system clock with the sign
	// reversed.
	Offset    time.Duration
	Frequency float64
	// Skew is the uncertainty of Frequency (s/s): the fitted slope's standard error, or
	// before the fit has a slope the restored drift's aged skew or, on a cold start,
	// MaxFreq. Zero before the first estimate.
	Skew float64
	// Reason says why the clock is unsynchronised or holding over; ReasonNone otherwise.
	Reason Reason
}

// Status returns the served state at system time sys.
func (s *Snapshot) Status(sys time.Time) Status {
	sys = sys.Round(0)
	local := s.Local(sys)
	st := Status{
		Offset:    local.Add(dur(s.corr.at(local))).Sub(sys),
		Frequency: s.corr.freq,
		Skew:      s.skew,
		RefTime:   s.refTime,
		Reason:    s.reason,
		Holdover:  s.holdover,
	}
	if !s.synced {
		if st.Reason.Kind == ReasonNone {
			st.Reason = Reason{Kind: ReasonStarting}
		}
		return unsynchronised(st)
	}
	st.Age = local.Sub(s.estAt)
	// A negative limit is `holdover 0`: no holdover once the sources are
	// lost, and no age limit while they are not.
	if s.limit >= 0 && st.Age > s.limit || s.limit < 0 && s.holdover {
		st.Reason = Reason{Kind: ReasonHoldover, Cause: s.reason.Kind, Agree: s.reason.Agree, Of: s.reason.Of}
		return unsynchronised(st)
	}
	if s.est.Stratum+1 >= MaxStratum {
		st.Reason = Reason{Kind: ReasonNoSelectable}
		return unsynchronised(st)
	}
	age := max(0, local.Sub(s.estAt).Seconds())
	grow := PHI*age + s.freqUnknown*max(0, local.Sub(s.fitMean).Seconds())
	if s.freqUnknown == 0 {
		// A fitted frequency is uncertain by its skew: over a long
		// holdover that error, not only PHI, accumulates (chrony grows
		// its root dispersion by skew + max clock error).
		grow += s.skew * age
	}
	disp := s.est.RootDispersion + dur(grow+math.Abs(s.corr.pending(local)))
	st.Synchronised = true
	st.Leap, st.Stratum, st.RefID = s.est.Leap, s.est.Stratum+1, s.est.RefID
	st.RootDelay, st.RootDispersion = s.est.RootDelay, min(disp, MaxDisp)
	return st
}

// unsynchronised fills in the header values RFC 5905 prescribes for a clock that is not
// synchronised: leap 3, stratum 16, and no error bound.
func unsynchronised(st Status) Status {
	st.Synchronised = false
	st.Leap, st.Stratum, st.RefID = LeapUnsynch, MaxStratum, RefIDInit
	st.RootDelay, st.RootDispersion = 0, MaxDisp
	return st
}
