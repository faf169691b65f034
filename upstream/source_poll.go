package upstream

import (
	"math"
	"time"
)

// Poll process constants.
const (
	// MinPollExp and MaxPollExp bound any poll exponent: chrony accepts -7 (1/128 s)
	// and RFC 5905's MAXPOLL is 17 (36 h).
	MinPollExp = -7
	MaxPollExp = 17

	// IBurstCount is how many polls an iburst source sends IBurstGap apart when it
	// starts: eight fill the clock filter, whose empty stages count MAXDISP each, so
	// that its dispersion drops from 16 s to a few tens of milliseconds and the source
	// becomes selectable within seconds rather than after eight full poll intervals (ntpd
	// sends eight; chrony four).
	IBurstCount = 8
	// IBurstGap is the spacing of burst polls, RFC 5905's and chrony's 2 s; a sub-second
	// minpoll shortens it to the minpoll interval.
	IBurstGap = 2 * time.Second

	// MaxReplyWait is the longest the edge waits for a reply before closing the request's
	// socket (shorter when the next poll comes sooner). A reply later than this is not a
	// useful sample anyway: its dispersion grows with the round trip.
	MaxReplyWait = 4 * time.Second

	// pollScoreLimit is how many net stable samples double the poll interval (and how many
	// net noisy ones or losses halve it). Four keeps one lucky or unlucky sample from
	// moving the poll, yet climbs from 64 s to 1024 s in about an hour.
	pollScoreLimit = 4

	// KEBackoffMin and KEBackoffMax bound the wait between NTS-KE attempts that keep
	// failing: it doubles each time, so a broken or overloaded KE server sees few
	// connections, and never exceeds the default maxpoll.
	KEBackoffMin = 2 * time.Second
	KEBackoffMax = 1024 * time.Second
)

// PollInterval converts a poll exponent to a duration.
func PollInterval(p int8) time.Duration {
	p = clampPollExp(p)
	if p >= 0 {
		return time.Second << uint(p)
	}
	return time.Second >> uint(-p)
}

func clampPollExp(p int8) int8 { return min(max(p, MinPollExp), MaxPollExp) }

// interval is the current poll interval.
func (s *Source) interval() time.Duration { return PollInterval(s.poll) }

// nextInterval is the wait until the next poll: the burst gap while an iburst lasts, then
// the poll interval.
func (s *Source) nextInterval() time.Duration {
	if s.burst > 0 {
		s.burst--
		return min(IBurstGap, PollInterval(s.cfg.MinPoll))
	}
	return s.interval()
}

// accept feeds a sample to the clock filter and adapts the poll interval.
//
// The poll follows how predictable the source is, in the spirit of chrony (which polls
// less while its regression explains the samples) and ntpd (PGATE): each sample is
// compared with the straight line through the two before it. A measurement's offset error
// is at most half its round-trip delay (RFC 5905 §8), so a miss larger than what the
// three delays allow cannot be path noise: the source's time jittered or stepped, and the
// poll comes down to follow it closely. A sample on the line counts towards a longer poll.
// A straight line, not the last offset, is the reference, because the local clock's own
// frequency error tilts every source's offsets alike and is the soft clock's business.
// Queueing noise within the delay bound therefore lengthens the poll, as in chrony and
// ntpd: the minimum-delay filter already discards it.
func (s *Source) accept(smp Sample) {
	s.filter.Add(smp, s.interval())
	h := &s.hist
	if s.burst == 0 && h[0].t.Before(h[1].t) && h[1].t.Before(smp.Time) {
		if s.unexplained(smp) {
			s.score -= 2
		} else {
			s.score++
		}
		s.adaptPoll()
	}
	h[0], h[1] = h[1], histPoint{t: smp.Time, off: smp.Offset, delay: smp.Delay}
}

// histPoint is a raw sample kept for poll adaptation.
type histPoint struct {
	t          time.Time
	off, delay time.Duration
}

// unexplained reports whether smp misses the line through the two previous samples by
// more than their offset error bounds allow: with k = (t₃−t₂)/(t₂−t₁) the prediction
// error is e₂(1+k) − e₁k − e₃, and |eᵢ| ≤ δᵢ/2 plus the clock precision.
func (s *Source) unexplained(smp Sample) bool {
	a, b := &s.hist[0], &s.hist[1]
	k := smp.Time.Sub(b.t).Seconds() / b.t.Sub(a.t).Seconds()
	pred := b.off.Seconds() + (b.off-a.off).Seconds()*k
	e := func(d time.Duration) float64 { return d.Seconds()/2 + s.filter.Precision.Seconds() }
	bound := e(b.delay)*(1+k) + e(a.delay)*k + e(smp.Delay)
	return math.Abs(smp.Offset.Seconds()-pred) > bound
}

// lost accounts for a request that got no usable answer before the next poll. A source
// that answers nothing any more is polled less often, up to maxpoll, as RFC 5905's poll
// process does for an unreachable peer (no point loading a dead or overloaded server);
// one that only drops some answers is polled more often, so that the filter still gets
// enough samples to pick a good one from.
func (s *Source) lost() {
	if s.burst > 0 {
		return
	}
	if s.reach == 0 {
		s.poll = min(s.poll+1, s.cfg.MaxPoll)
		s.score = 0
		return
	}
	s.score--
	s.adaptPoll()
}

func (s *Source) adaptPoll() {
	switch {
	case s.score >= pollScoreLimit:
		s.poll = min(s.poll+1, s.cfg.MaxPoll)
		s.score = 0
	case s.score <= -pollScoreLimit:
		s.poll = max(s.poll-1, s.cfg.MinPoll)
		s.score = 0
	}
}

// keBackoff is the wait before the next NTS-KE attempt after keyFails failures:
// KEBackoffMin doubling up to KEBackoffMax, with "equal jitter" (half fixed, half
// random) so that many gateways restarted together do not retry in lockstep.
func (s *Source) keBackoff() time.Duration {
	d := KEBackoffMin
	for i := 1; i < s.keyFails && d < KEBackoffMax; i++ {
		d *= 2
	}
	d = min(d, KEBackoffMax)
	return d/2 + time.Duration(math.Floor(RandomFraction(s.cfg.Rand)*float64(d/2)))
}
