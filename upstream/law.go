package upstream

import (
	"math"
	"time"
)

// Law is the served clock over system time as the edge publishes it, one linear piece of
// the soft clock's piecewise-linear law:
//
//	served(sys) = sys + Offset + Freq·(sys − Base)   for Base ≤ sys < Until
//
// ntp.ServedState carries exactly these three numbers, so the server path maps each
// packet's receive time with one multiply-add instead of evaluating the soft clock.
type Law struct {
	Base   time.Time     // the system time the law was read at
	Offset time.Duration // served minus system time at Base
	// Freq is the rate of change of Offset (s/s): the clock's frequency correction plus,
	// while a correction is being slewed in, the slew rate (the configured MaxSlew).
	Freq float64
	// Until is when the piece ends because a slew in progress completes (the served
	// clock's, or the system clock's under a Discipliner); the law is exact before it.
	// Zero: no slew is in progress and the law holds until the next Update, Step or Lose.
	Until time.Time
}

// Law returns the piece of the served clock's law that holds at system time sys.
func (c *SoftClock) Law(sys time.Time) Law { return c.snap.Law(sys) }

// Law returns the piece of the served clock's law that holds at system time sys.
//
// Served minus system time is corr(local) − kern(sys) with local = sys − kern(sys), so on
// a piece where the kernel law has slope k and the correction law slope c its slope is
// c·(1 − k) − k; the piece ends where either law's slew ends, the correction's end mapped
// from local to system time through the same linear relation.
func (s *Snapshot) Law(sys time.Time) Law {
	sys = sys.Round(0)
	local := s.Local(sys)
	l := Law{Base: sys, Offset: local.Add(dur(s.corr.at(local))).Sub(sys)}
	k, kEnd := s.kern.piece(sys)
	c, cEnd := s.corr.piece(local)
	l.Freq = c*(1-k) - k
	l.Until = kEnd
	if !cEnd.IsZero() {
		end := sys.Add(dur(cEnd.Sub(local).Seconds() / (1 - k)))
		if l.Until.IsZero() || end.Before(l.Until) {
			l.Until = end
		}
	}
	return l
}

// piece returns the slope of the segment's law at t and when the linear piece holding t
// ends (zero if it never does): at start, if t is before it, or when the slew is all in.
func (s *segment) piece(t time.Time) (slope float64, end time.Time) {
	if s.start.IsZero() {
		return 0, time.Time{} // at() is the constant base
	}
	dt := t.Sub(s.start).Seconds()
	if dt < 0 {
		return s.freq, s.start
	}
	if s.rate <= 0 || s.pendingAfter(dt) == 0 {
		return s.freq, time.Time{}
	}
	return s.freq + math.Copysign(s.rate, s.slew), s.start.Add(dur(math.Abs(s.slew) / s.rate))
}
