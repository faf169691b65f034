// Package simtest simulates a gateway's surroundings for tests, without sockets: true time,
// a free-running system clock with an offset and a frequency error, and NTP servers reached
// over paths with delay, queueing jitter, spikes and asymmetry, some of which may lie or
// die. Everything is driven by an explicit fake clock (Advance) and a seeded random source,
// so a run is reproducible from its seed.
//
// Exchange returns the four on-wire timestamps of one client/server exchange, which is what
// a per-source poll state machine consumes; SampleOf turns them into an upstream.Sample for
// tests that drive the filter directly. Kernel is a faithful fake of an adjtimex
// Discipliner acting on the simulated system clock.
package simtest

import (
	"math"
	"math/rand/v2"
	"time"

	"timegate/upstream"
)

// Source is one simulated NTP server and the network path to it.
type Source struct {
	Name string
	// Delay is the base one-way delay; Asymmetry is outbound minus inbound base delay, so
	// the outbound path takes Delay + Asymmetry/2. Asymmetry biases the measured offset by
	// +Asymmetry/2, an error no NTP client can see.
	Delay     time.Duration
	Asymmetry time.Duration
	// Jitter is the mean of the exponential queueing delay added to each direction.
	Jitter time.Duration
	// SpikeProb is the chance that a direction suffers an extra Spike of queueing.
	SpikeProb float64
	Spike     time.Duration
	// Lie is how far the server's clock is from true time.
	Lie time.Duration
	// Header fields the server reports.
	Stratum        uint8
	RootDelay      time.Duration
	RootDispersion time.Duration
	Leap           upstream.Leap
	Precision      time.Duration
	// Down makes the server stop answering.
	Down bool
}

// Exchange is one request/response. T1 and T4 are system clock readings at the client
// when the request left and the response arrived; T2 and T3 are the server's receive and
// transmit timestamps.
type Exchange struct {
	T1, T2, T3, T4 time.Time
	Source         *Source
}

// Net is the simulated world.
type Net struct {
	Sources []Source

	rng     *rand.Rand
	start   time.Time     // true time at creation
	elapsed time.Duration // true time since start
	sysOff  float64       // system clock error at start, seconds
	sysFreq float64       // system clock frequency error, s/s (positive: runs fast)
	kern    kernelLaw
}

// New creates a world at true time start, whose system clock is sysOffset ahead of true
// time and gains sysFreq seconds per second.
func New(seed uint64, start time.Time, sysOffset time.Duration, sysFreq float64, sources []Source) *Net {
	return &Net{
		Sources: sources,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		start:   start.Round(0),
		sysOff:  sysOffset.Seconds(),
		sysFreq: sysFreq,
	}
}

// Advance moves true time forward by d.
func (n *Net) Advance(d time.Duration) { n.elapsed += d }

// Elapsed is the true time since the world was created.
func (n *Net) Elapsed() time.Duration { return n.elapsed }

// True is the true time now.
func (n *Net) True() time.Time { return n.start.Add(n.elapsed) }

// Sys is the system clock reading now, including what Kernel was told to do.
func (n *Net) Sys() time.Time { return n.sysAt(n.elapsed) }

// raw is the uncorrected oscillator reading, in seconds since start, at true elapsed e.
func (n *Net) raw(e time.Duration) float64 {
	s := e.Seconds()
	return s + n.sysOff + n.sysFreq*s
}

func (n *Net) sysAt(e time.Duration) time.Time {
	r := n.raw(e)
	return n.start.Add(seconds(r + n.kern.at(r)))
}

// Exchange sends a request to source i now and returns the exchange, or false if the
// server is down. The response's arrival lies in the future by the round trip; true time
// is not advanced.
func (n *Net) Exchange(i int) (Exchange, bool) {
	s := &n.Sources[i]
	if s.Down {
		return Exchange{}, false
	}
	out := s.Delay + s.Asymmetry/2 + n.queue(s)
	in := s.Delay - s.Asymmetry/2 + n.queue(s)
	const processing = 20 * time.Microsecond
	rx := n.elapsed + out
	tx := rx + processing
	server := func(e time.Duration) time.Time { return n.start.Add(e + s.Lie) }
	return Exchange{
		T1:     n.sysAt(n.elapsed),
		T2:     server(rx),
		T3:     server(tx),
		T4:     n.sysAt(tx + in),
		Source: s,
	}, true
}

// queue draws one direction's queueing delay.
func (n *Net) queue(s *Source) time.Duration {
	q := time.Duration(n.rng.ExpFloat64() * float64(s.Jitter))
	if s.SpikeProb > 0 && n.rng.Float64() < s.SpikeProb {
		q += s.Spike
	}
	return q
}

// SampleOf computes the RFC 5905 §8 sample of an exchange: T1 and T4 are first mapped to
// local time by local (SoftClock.Local; nil for identity), and the dispersion is the two
// precisions plus PHI times the round trip.
func SampleOf(e Exchange, local func(time.Time) time.Time, precision time.Duration) upstream.Sample {
	t1, t4 := e.T1, e.T4
	if local != nil {
		t1, t4 = local(t1), local(t4)
	}
	offset := (e.T2.Sub(t1) + e.T3.Sub(t4)) / 2
	delay := t4.Sub(t1) - e.T3.Sub(e.T2)
	disp := e.Source.Precision + precision + seconds(upstream.PHI*t4.Sub(t1).Seconds())
	return upstream.Sample{
		Time:           t4,
		Offset:         offset,
		Delay:          delay,
		Dispersion:     disp,
		RootDelay:      e.Source.RootDelay,
		RootDispersion: e.Source.RootDispersion,
		Stratum:        e.Source.Stratum,
		Leap:           e.Source.Leap,
	}
}

// Kernel returns a Discipliner acting on the simulated system clock. It obeys the
// upstream.Adjustment law exactly, timed by the uncorrected oscillator as a kernel is, and
// records every call.
func (n *Net) Kernel() *Kernel { return &Kernel{net: n} }

// Kernel is the fake adjtimex.
type Kernel struct {
	net *Net
	// Steps and Adjusts record the calls, in order.
	Steps   []time.Duration
	Adjusts []upstream.Adjustment
}

// Step jumps the system clock, keeping any slew in progress.
func (k *Kernel) Step(offset time.Duration) error {
	k.Steps = append(k.Steps, offset)
	r := k.net.raw(k.net.elapsed)
	law := &k.net.kern
	*law = kernelLaw{start: r, base: law.at(r) + offset.Seconds(), freq: law.freq, slew: law.pending(r), rate: law.rate}
	return nil
}

// Adjust replaces the pending slew and the frequency.
func (k *Kernel) Adjust(a upstream.Adjustment) error {
	k.Adjusts = append(k.Adjusts, a)
	r := k.net.raw(k.net.elapsed)
	law := &k.net.kern
	*law = kernelLaw{start: r, base: law.at(r), freq: a.Freq, slew: a.Offset.Seconds(), rate: a.Rate}
	return nil
}

// kernelLaw is the correction the fake kernel applies, over oscillator seconds.
type kernelLaw struct {
	start, base, freq, slew, rate float64
}

func (l *kernelLaw) at(r float64) float64 {
	dt := r - l.start
	return l.base + l.freq*dt + l.slew - l.pendingAfter(dt)
}

func (l *kernelLaw) pending(r float64) float64 { return l.pendingAfter(r - l.start) }

func (l *kernelLaw) pendingAfter(dt float64) float64 {
	done := max(0, l.rate*dt)
	if done >= math.Abs(l.slew) {
		return 0
	}
	return l.slew - math.Copysign(done, l.slew)
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }
