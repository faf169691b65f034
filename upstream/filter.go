package upstream

import (
	"math"
	"time"
)

// filterMaxDist is the delay beyond which a filter stage no longer counts towards jitter once
// two better ones are in hand, and the dispersion beyond which the popcorn spike test is not
// trusted (ntpd's sys_maxdist, the same 1.5 s as DefaultMaxDistance).
const filterMaxDist = 1.5

// Sample is one measurement of a source (RFC 5905 §8), in local time.
type Sample struct {
	// Time is T4, the local time the response arrived.
	Time time.Time
	// Offset θ = ((T2 − T1) + (T3 − T4)) / 2 and Delay δ = (T4 − T1) − (T3 − T2).
	Offset time.Duration
	Delay  time.Duration
	// Dispersion ε is the error bound of this one measurement when it was taken:
	// server precision + local precision + PHI·(T4 − T1).
	Dispersion time.Duration

	// Header fields of the response, kept as the source's latest values.
	RootDelay      time.Duration
	RootDispersion time.Duration
	Stratum        uint8
	Leap           Leap
}

// Stats is the clock filter output for one source (RFC 5905 §10).
type Stats struct {
	// Epoch is the local time of the sample in use; Offset and Delay are that sample's.
	Epoch  time.Time
	Offset time.Duration
	Delay  time.Duration
	// Dispersion ε is the weighted dispersion of the whole register as of Updated; root
	// distance adds PHI·(now − Updated) to it.
	Dispersion time.Duration
	Updated    time.Time
	// Jitter ψ is the RMS difference of the usable offsets from the one in use.
	Jitter time.Duration
	// Samples is how many real (non-dummy) stages the register holds.
	Samples int
}

// Outcome says what one filter update did.
type Outcome uint8

// Filter outcomes.
const (
	// Accepted: a new minimum-distance sample is in use.
	Accepted Outcome = iota
	// Stale: the minimum-distance sample is not newer than the one already used; RFC 5905 §10
	// never uses a sample twice nor one older than the last used, so nothing changed but
	// dispersion and jitter.
	Stale
	// Spike: the new sample was held back as a popcorn spike.
	Spike
	// Empty: the register holds no usable sample.
	Empty
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Stale:
		return "stale"
	case Spike:
		return "spike"
	case Empty:
		return "empty"
	}
	return "unknown"
}

// stage is one slot of the shift register: the tuple (θ, δ, ε, t) in seconds. The zero
// stage is the dummy tuple (0, MAXDISP, MAXDISP, 0) that fills an empty register.
type stage struct {
	offset, delay, disp float64
	t                   time.Time
	valid               bool
}

// delayOrMax and dispOrMax give a dummy stage its MAXDISP values.
func (s *stage) delayOrMax() float64 {
	if !s.valid {
		return MaxDisp.Seconds()
	}
	return s.delay
}

func (s *stage) dispOrMax() float64 {
	if !s.valid {
		return MaxDisp.Seconds()
	}
	return s.disp
}

// Filter is the clock filter of one source (RFC 5905 §10): an 8-stage shift register of
// samples from which it picks the one with minimum distance (delay/2 + Skew·age, see
// byDistance): the sample that spent the least time in queues carries the least error,
// unless it is so old that the clock's unknown drift since outweighs that. The zero Filter is empty
// and ready to use.
type Filter struct {
	// Skew is the local clock's frequency uncertainty (s/s), SoftClock.SampleSkew: how
	// much an older sample may have gone stale per second of age (see byDistance).
	// 0 orders the samples by delay alone, as RFC 5905 does.
	Skew float64
	// Precision is the local clock precision; jitter is never reported below it (RFC 5905
	// §10), and the popcorn gate is at least SGate times it.
	Precision time.Duration

	reg     [NStage]stage // reg[0] is the newest
	updated time.Time     // when the register was last shifted
	stats   Stats
	have    bool // stats holds an accepted sample
	hdr     Sample
}

// Add shifts s into the register and re-evaluates it. poll is the source's current poll
// interval: a jump larger than SGate·jitter less than two poll intervals after the last
// used sample is held back as a spike; poll ≤ 0 disables that test.
func (f *Filter) Add(s Sample, poll time.Duration) Outcome {
	f.shift(stage{
		offset: s.Offset.Seconds(),
		delay:  s.Delay.Seconds(),
		disp:   min(s.Dispersion.Seconds(), MaxDisp.Seconds()),
		t:      s.Time,
		valid:  true,
	}, s.Time)
	f.hdr = s
	return f.evaluate(poll)
}

// Timeout shifts a dummy tuple into the register at local time now. The poll state machine
// calls it when the three low-order bits of the reach register are zero (RFC 5905 §10.1),
// so a silent source ages out: after eight calls the register is empty again.
func (f *Filter) Timeout(now time.Time) Outcome {
	f.shift(stage{}, now)
	return f.evaluate(0)
}

// Stats returns the filter output; ok is false until a sample has been accepted.
func (f *Filter) Stats() (s Stats, ok bool) {
	return f.stats, f.have
}

// Candidate returns the source as selection sees it, with the header fields of its latest
// packet; ok is false while the filter has nothing to offer. The caller sets ID, RefID and
// Prefer.
func (f *Filter) Candidate() (c Candidate, ok bool) {
	if !f.have || f.stats.Samples == 0 {
		return Candidate{}, false
	}
	return Candidate{
		Stats:          f.stats,
		RootDelay:      f.hdr.RootDelay,
		RootDispersion: f.hdr.RootDispersion,
		Stratum:        f.hdr.Stratum,
		Leap:           f.hdr.Leap,
	}, true
}

// Reset empties the filter, as after a source is re-keyed or re-resolved.
func (f *Filter) Reset() {
	*f = Filter{Precision: f.Precision, Skew: f.Skew}
}

// shift pushes st in as the newest stage, first ageing every stored sample by PHI times the
// time since the last shift: an old measurement is worth less than it was (RFC 5905 §10).
func (f *Filter) shift(st stage, now time.Time) {
	grow := 0.0
	if !f.updated.IsZero() {
		grow = PHI * max(0, now.Sub(f.updated).Seconds())
	}
	for i := NStage - 1; i > 0; i-- {
		f.reg[i] = f.reg[i-1]
		if f.reg[i].valid {
			f.reg[i].disp = min(f.reg[i].disp+grow, MaxDisp.Seconds())
		}
	}
	f.reg[0] = st
	if now.After(f.updated) {
		f.updated = now
	}
}

// byDistance returns the stage indexes sorted by increasing sample distance, dummies last;
// ties keep the newer stage first. A stage's distance is half its delay, the most its
// offset can be off through path asymmetry, plus Skew times its age at the newest stage:
// the most the local clock's unknown frequency error can have moved it since.
//
// RFC 5905 sorts by delay alone (Skew 0). Where delays differ by less than their noise (a
// LAN, a loopback) that keeps using whichever sample happened to be quickest, minutes old:
// the soft clock then gets no fresh estimate, learns no frequency, and the served error
// grows by the frequency error times the sample's age (issue 14: several milliseconds
// within minutes of the first synchronisation at 64 s polls and 30 ppm). While the
// frequency is unknown (Skew large) fresh samples win, so it is learnt; once it is fitted
// (Skew small) the order is the RFC's, and on a noisy path the quickest sample is kept.
func (f *Filter) byDistance() [NStage]int {
	var key [NStage]float64
	var order [NStage]int
	for i := range order {
		key[i] = f.reg[i].delayOrMax() / 2
		if f.reg[i].valid {
			key[i] += f.Skew * max(0, f.updated.Sub(f.reg[i].t).Seconds())
		} else {
			key[i] += MaxDisp.Seconds()
		}
		order[i] = i
		for j := i; j > 0 && key[order[j]] < key[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	return order
}

// evaluate recomputes dispersion and jitter and decides whether the minimum-distance
// sample becomes the one in use (clock_filter, RFC 5905 Appendix A.5.2).
func (f *Filter) evaluate(poll time.Duration) Outcome {
	order := f.byDistance()
	// ε = Σ ε_i / 2^(i+1) over the sorted stages, dummies included: an emptyish register
	// has a dispersion near MAXDISP, which keeps a new source out of selection until it
	// has answered a few times.
	disp, n, m := 0.0, 0, 0
	for i := NStage - 1; i >= 0; i-- {
		disp = 0.5 * (disp + f.reg[order[i]].dispOrMax())
	}
	for _, k := range order {
		st := &f.reg[k]
		if !st.valid {
			continue
		}
		n++
		if m < 2 || st.delay < filterMaxDist {
			m++
		}
	}
	f.stats.Dispersion, f.stats.Updated, f.stats.Samples = dur(disp), f.updated, n
	if m == 0 {
		return Empty
	}
	best := &f.reg[order[0]]
	jitter := f.jitter(order, m)
	if f.have && !best.t.After(f.stats.Epoch) {
		f.stats.Jitter = jitter
		return Stale
	}
	if f.spike(best, disp, poll) {
		return Spike
	}
	f.stats.Epoch, f.stats.Offset, f.stats.Delay = best.t, dur(best.offset), dur(best.delay)
	f.stats.Jitter = jitter
	f.have = true
	return Accepted
}

// jitter is ψ = sqrt(Σ_{j<m} (θ_0 − θ_j)² / (m − 1)) over the m usable stages in distance
// order, floored at the precision (RFC 5905 §10).
func (f *Filter) jitter(order [NStage]int, m int) time.Duration {
	if m < 2 {
		return f.Precision
	}
	best := f.reg[order[0]].offset
	sum := 0.0
	for _, k := range order[1:m] {
		d := f.reg[k].offset - best
		sum += d * d
	}
	return max(dur(math.Sqrt(sum/float64(m-1))), f.Precision)
}

// spike reports whether best is a popcorn spike: an offset change larger than SGate times
// the jitter, less than two poll intervals after the last used sample, while both the
// register and the sample are trustworthy (ntpd's clock_filter conditions). A shift that
// persists for two poll intervals is believed.
//
// Two choices differ from RFC 5905 Appendix A, which compares against the jitter recomputed
// around the new sample and times the window by the new sample's epoch. A lone spike at the
// head of the distance order inflates that jitter to its own size, so the gate could never trip
// on the spike it is for; and a spike that stays the minimum-distance sample would keep its
// epoch, blocking a genuine shift until it left the register eight polls later. Here the
// gate uses the jitter established before the sample, and the window runs to the newest
// sample.
func (f *Filter) spike(best *stage, disp float64, poll time.Duration) bool {
	if !f.have || poll <= 0 || disp >= filterMaxDist || best.disp >= filterMaxDist {
		return false
	}
	gate := SGate * max(f.stats.Jitter, f.Precision).Seconds()
	jump := math.Abs(best.offset - f.stats.Offset.Seconds())
	return jump > gate && f.updated.Sub(f.stats.Epoch) < 2*poll
}
