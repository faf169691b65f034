package upstream

import (
	"encoding/binary"
	"io"
	"slices"
	"time"
)

// Poll spacing. Each source polls on its own timer, and nothing else keeps
// those timers apart: sources started together (every source of a gateway at
// start-up, or a pool's addresses) poll at the same instant for as long as
// their intervals agree, which they do through iburst and at minpoll, and
// gateways of a fleet restarted together poll the upstreams they share in
// lockstep. The requests then queue behind each other in the upstreams'
// receive paths and the replies in the gateway's, and that wait lands in
// every sample's delay and, unevenly split between the legs, in its offset.
// chrony keeps any two of its sources' polls a separation apart, 2^(poll−3)
// s clamped to 2–200 ms, and stretches each wait and separation by up to 2 %
// at random (sched.c, SCH_AddTimeoutInClass; ntp_core.c, get_separation):
// the same rule, the same constants.
const (
	MinPollSeparation = 2 * time.Millisecond
	MaxPollSeparation = 200 * time.Millisecond
	// PollRandomness is the largest fraction by which a wait is stretched
	// at random: enough to break the phase lock of gateways started
	// together within a few polls, too little to matter to the poll
	// process.
	PollRandomness = 0.02
)

// PollSeparation is the least time kept between a poll at exponent poll and
// any other source's poll: an eighth of the interval, within
// MinPollSeparation and MaxPollSeparation.
func PollSeparation(poll int8) time.Duration {
	d := time.Second
	// Not PollInterval(poll-3): that clamps at MinPollExp, an eighth
	// below which the separation is still defined (and clamped here).
	if e := int(poll) - 3; e >= 0 {
		d <<= uint(min(e, 30))
	} else {
		d >>= uint(min(-e, 30))
	}
	return min(max(d, MinPollSeparation), MaxPollSeparation)
}

// PollSpacing places the polls of one gateway's sources. It remembers when
// the latest poll went out; the caller knows which polls are still due and
// passes them to each Place. The zero value is ready to use.
type PollSpacing struct {
	last    time.Time // the latest poll sent; zero before the first
	pending []time.Time
}

// Place returns when a poll that a source asked for wait after now should go
// out, at poll exponent poll. The wait and the separation are stretched by
// the fraction u·PollRandomness (u in [0, 1), from RandomFraction); then
// the poll is moved later, never earlier, until it is a separation from the
// latest poll sent and from every time in due (the other sources' polls
// still to come; overdue ones count too).
func (p *PollSpacing) Place(now time.Time, wait time.Duration, poll int8, u float64, due []time.Time) time.Time {
	u = min(max(u, 0), 1)
	stretch := 1 + u*PollRandomness
	d := time.Duration(float64(max(wait, 0)) * stretch)
	sep := time.Duration(float64(PollSeparation(poll)) * stretch)
	if !p.last.IsZero() {
		if since := now.Sub(p.last); since >= 0 && since < sep && since+d < sep {
			d = sep - since
		}
	}
	// In order of time, as chrony scans its timer queue: each poll passed
	// can only move this one later, past the polls already looked at.
	p.pending = append(p.pending[:0], due...)
	slices.SortFunc(p.pending, func(a, b time.Time) int { return a.Compare(b) })
	for _, t := range p.pending {
		diff := t.Sub(now)
		if d > diff && d-diff < sep || d <= diff && diff-d < sep {
			d = diff + sep
		}
	}
	return now.Add(d)
}

// Polled records that a poll went out at now.
func (p *PollSpacing) Polled(now time.Time) { p.last = now }

// RandomFraction draws a number in [0, 1) from r, uniform to 53 bits; 0 if
// r fails (a poll then goes out unstretched, still separated; a KE back-off
// takes its shortest value).
func RandomFraction(r io.Reader) float64 {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}
