package udpserve

import "time"

// The transmit lead. A basic-mode reply's transmit timestamp (T3) is read
// from the clock just before sendmmsg, but the reply reaches the device
// (where the kernel's software transmit stamp is taken, as close to the
// wire as software gets) some microseconds later: on this project's VM
// about 2–4 µs through loopback or a veth. A client cannot tell that time
// from the return path, so it sees the return path that much longer and
// the server's time half of it behind (RFC 5905's offset assumes symmetric
// paths). chronyd serves that error; its interleaved mode removes it for
// clients that ask, with the kernel's stamp of the previous reply.
//
// For every other client the worker learns the lead instead: now and then
// (leadProbeEvery) it asks the kernel for the transmit stamp of the first
// reply of a send, measures stamp − clock read, and adds the smallest lead
// seen in the last leadWindows windows of leadWindow samples to the T3 it
// writes. The minimum, not the mean, and over several windows: a lead
// larger than a send's own puts T3 after the reply reached the device,
// which is a new error, while a smaller one only leaves part of the old
// error, so the estimate falls as soon as one window saw a faster send
// and rises only when every window of the last leadWindows (6.4 s of
// probes) was slower — a burst of preempted or queued sends cannot raise
// it. Samples beyond maxLeadSample are ignored, and the lead applied never
// exceeds maxLead.
//
// What is measured is the send's part: from the clock read just before
// sendmmsg to the stamp, whatever the probing reply's kind. A plain
// reply's T3 is that read, so the lead moves it to the stamp. A keyed or
// NTS reply's T3 is read earlier, before its MAC or seal and the rest of
// the batch, so the same lead leaves it still a little early — the side
// of the error chronyd serves, never the other. A probe reply asks the
// kernel for a stamp, which costs it a copy of the packet for the error
// queue before the stamp is taken (the clone in __skb_tstamp_tx), so the
// lead it measures is that much (about 0.1 µs) longer than an ordinary
// reply's: the one way in which the lead can put a fast reply's T3 past
// its departure, by about that much.

const (
	// leadWindow is how many samples make one window's minimum, and
	// leadWindows how many windows' minima the estimate is the least of.
	leadWindow  = 16
	leadWindows = 8
	// leadProbeEvery spaces the probes of one worker: a probe costs one
	// error-queue read, so even a busy worker spends nothing measurable.
	leadProbeEvery = 50 * time.Millisecond
	// leadProbeTimeout gives up on a probe whose stamp never came (the
	// kernel drops a stamp when the socket's receive buffer is full).
	leadProbeTimeout = time.Second
	// maxLeadSample bounds a sample taken into account.
	maxLeadSample = 200 * time.Microsecond
	// maxLead bounds the lead applied to a transmit timestamp.
	maxLead = 50 * time.Microsecond
)

// leadEstimator keeps the least of the last windows' minima of
// transmit-lead samples. The zero value estimates no lead until its first
// window is complete.
type leadEstimator struct {
	n      int                        // samples in the current window
	min    time.Duration              // their minimum
	minima [leadWindows]time.Duration // complete windows' minima, a ring; 0 = none yet
	next   int                        // the ring's slot for the next window
	est    time.Duration              // the least of minima, capped
}

// observe takes one sample: the kernel's transmit stamp minus the clock
// read that gave the reply's transmit timestamp. It reports whether the
// estimate changed.
func (e *leadEstimator) observe(lag time.Duration) bool {
	if lag <= 0 || lag > maxLeadSample {
		// Not a send this estimate describes: the clock was stepped
		// between the two readings, or the sender was preempted.
		return false
	}
	if e.n == 0 || lag < e.min {
		e.min = lag
	}
	e.n++
	if e.n < leadWindow {
		return false
	}
	e.n = 0
	e.minima[e.next] = e.min
	e.next = (e.next + 1) % leadWindows
	old := e.est
	e.est = maxLead
	for _, m := range e.minima {
		if m > 0 {
			e.est = min(e.est, m)
		}
	}
	return e.est != old
}

// lead is the lead to add to a basic reply's transmit timestamp.
func (e *leadEstimator) lead() time.Duration { return e.est }

// leadProbe is the state of a worker's probe of its transmit lead.
type leadProbe struct {
	idx     int           // the reply of the pending send that carries the probe, or -1
	pending bool          // a stamp is awaited
	sys     time.Time     // the clock read that gave its transmit timestamp
	t3      uint64        // the transmit timestamp written, to recognise the stamp
	next    time.Time     // no new probe before this
	every   time.Duration // the spacing: leadProbeEvery (tests shorten it)
	est     leadEstimator // what the probes measured
}

// due reports whether the reply about to be restamped at now should carry
// a probe: none awaited (or the awaited one given up), and the spacing
// passed.
func (p *leadProbe) due(now time.Time) bool {
	if p.pending && now.Sub(p.sys) < leadProbeTimeout {
		return false
	}
	return !now.Before(p.next)
}

// arm records a probe on reply idx, restamped from the clock read sys with
// the transmit timestamp t3.
func (p *leadProbe) arm(idx int, sys time.Time, t3 uint64) {
	p.idx, p.pending, p.sys, p.t3 = idx, true, sys, t3
	p.next = sys.Add(p.every)
}

// match takes a transmit stamp tx of a reply whose transmit timestamp is
// t3: when it is the probe's, it feeds the estimator and reports true.
func (p *leadProbe) match(t3 uint64, tx time.Time) bool {
	if !p.pending || t3 != p.t3 {
		return false
	}
	p.pending = false
	p.est.observe(tx.Sub(p.sys))
	return true
}
