package leap

import (
	"math"
	"time"
)

// Mode is how the served clock takes up a leap second (chrony's leapsecmode).
type Mode uint8

const (
	// ModeStep: served time steps back one second at midnight for an inserted
	// second (23:59:59 is served twice), forward at 23:59:59 for a deleted one.
	// It is what chronyd -x does (its `system` mode falls back to step without
	// clock control); timegate never has the kernel insert the second.
	ModeStep Mode = iota
	// ModeSlew: the second is slewed in from the leap at SlewRate.
	ModeSlew
	// ModeIgnore: the leap is announced but served time is not corrected; the
	// soft clock slews the second out later, as the sources show it.
	ModeIgnore
)

// SlewRate is chrony's default maxslewrate (83333 ppm): a leap second slewed
// in at this rate takes 12 s, as `leapsecmode slew` documents for chrony.
const SlewRate = 1.0 / 12

// InProgress is how long after a leap LI 3 is served, as chrony does
// (leap_end_timeout): a client that samples the second itself must not trust
// it.
const InProgress = 2 * time.Second

// Close is how near a leap (either side) upstream samples are dropped, as
// chrony's LEAP_SECOND_CLOSE: a measurement spanning the leap is off by the
// second, or by whatever smear the upstream applies.
const Close = 5 * time.Second

// Due is a leap second scheduled at the end of the current UTC day.
type Due struct {
	// Sec is +1 for an inserted second, −1 for a deleted one, 0 for none.
	Sec int
	// At is when served time takes it up: the midnight ending the day for
	// an inserted second, one second before it for a deleted one.
	At time.Time
	// FromTable: the leap comes from the configured table, not the vote.
	FromTable bool
	// Overruled: the upstream majority voted a leap the table does not
	// list (or the other way round) and the table was followed.
	Overruled bool
}

// Decide returns the leap due at the end of now's UTC day, the served time
// (chrony's update_leap_status):
//
//   - A table with an expiry date that has not passed is authoritative: it
//     lists every leap up to its expiry, so the upstream vote is ignored. A
//     majority of hostile upstreams cannot then insert a second that the
//     operator's table does not list (chrony follows the vote before its
//     table; this is stricter).
//   - Otherwise (no table, an expired one, or a TZif file without an expiry)
//     the vote is followed when it announces a leap, and only on the last
//     day of June or December as chrony allows; with a vote of none the
//     table's leap, if any, is used (chrony's leapsectz rule).
//
// vote is +1, −1 or 0, the majority's leap indicator.
func Decide(now time.Time, tb *Table, vote int) Due {
	next := dayStart(now).Add(24 * time.Hour)
	d := Due{}
	switch {
	case tb != nil && !tb.Expires.IsZero() && !tb.Expired(now):
		d.Sec, d.FromTable = tb.Due(now), true
		d.Overruled = vote != 0 && vote != d.Sec
	case vote != 0 && leapDay(now):
		d.Sec = sign(vote)
	case vote == 0 && tb != nil:
		d.Sec, d.FromTable = tb.Due(now), true
	}
	if d.Sec == 0 {
		return Due{Overruled: d.Overruled}
	}
	d.At = next
	if d.Sec < 0 {
		d.At = next.Add(-time.Second)
	}
	return d
}

// leapDay reports whether t is on the last day of June or December, the only
// days chrony accepts a leap announced by its sources.
func leapDay(t time.Time) bool {
	_, m, day := t.UTC().Date()
	return m == time.June && day == 30 || m == time.December && day == 31
}

// Ramp is how much of a leap second served time has taken up dt after the
// leap: a fraction from 0 to 1. The zero Ramp steps (1 at once).
type Ramp struct {
	// Rate slews the second in at this rate (s/s); 0 steps.
	Rate float64
	// Smooth, when set, takes precedence: chrony's smoothing spline.
	Smooth *Smooth
}

// Fraction returns the part of the second taken up dt after the leap.
func (r *Ramp) Fraction(dt time.Duration) float64 {
	switch {
	case dt < 0:
		return 0
	case r.Smooth != nil:
		return 1 - r.Smooth.Remaining(dt.Seconds())
	case r.Rate > 0:
		return min(1, r.Rate*dt.Seconds())
	}
	return 1
}

// Length is how long the ramp takes.
func (r *Ramp) Length() time.Duration {
	switch {
	case r.Smooth != nil:
		return time.Duration(r.Smooth.Length() * float64(time.Second))
	case r.Rate > 0:
		return time.Duration(float64(time.Second) / r.Rate)
	}
	return 0
}

// Smooth is chrony's time-smoothing spline (smooth.c) for one second of
// offset and no starting frequency: the frequency of the smoothed time
// changes at MaxWander (s/s²) up to MaxFreq, stays there as long as needed,
// and is brought back to zero the same way, so the smoothed time has neither
// a step nor a frequency jump. With `smoothtime 400 0.001 leaponly` one
// second takes about 17.6 hours.
type Smooth struct {
	stages [3]stage
}

type stage struct{ wander, length float64 }

// NewSmooth computes the stages for maxFreq (s/s) and maxWander (s/s²), both
// positive (chrony's update_stages with offset 1 and frequency 0).
func NewSmooth(maxFreq, maxWander float64) *Smooth {
	l := math.Sqrt(1 / maxWander)
	l1, l2, l3 := l, 0.0, l
	if f := l1*maxWander - maxFreq; f > 0 {
		lc := f / maxWander
		l2 = lc * (2 + f/maxFreq)
		l1 -= lc
		l3 -= lc
	}
	return &Smooth{stages: [3]stage{{maxWander, l1}, {0, l2}, {-maxWander, l3}}}
}

// Remaining is the part of the second not yet smoothed out elapsed seconds
// after the start (chrony's get_smoothing), clamped to [0, 1].
func (s *Smooth) Remaining(elapsed float64) float64 {
	off, freq := 1.0, 0.0
	for _, st := range s.stages {
		if elapsed <= 0 {
			break
		}
		l := min(st.length, elapsed)
		off -= l * (2*freq + st.wander*l) / 2
		freq += st.wander * l
		elapsed -= l
	}
	if elapsed > 0 {
		off -= elapsed * freq
	}
	return max(0, min(1, off))
}

// Length is the total duration of the smoothing, in seconds.
func (s *Smooth) Length() float64 {
	return s.stages[0].length + s.stages[1].length + s.stages[2].length
}

// MaxRate is the highest frequency offset the smoothing reaches (s/s).
func (s *Smooth) MaxRate() float64 {
	return s.stages[0].wander * s.stages[0].length
}
