package udpserve

import (
	"slices"
	"time"
)

// The transmit lead. A basic-mode reply's transmit timestamp (T3) is read
// from the clock just before sendmmsg, but the reply reaches the device
// (where the kernel's software transmit stamp is taken, as close to the
// wire as software gets) later: on this project's VM 1–4 µs through
// loopback or a veth. A client cannot tell that time from the return path,
// so it sees the return path that much longer and the server's time half
// of it behind (RFC 5905's offset assumes symmetric paths). chronyd serves
// that error; its interleaved mode removes it for clients that ask, with
// the kernel's stamp of the previous reply.
//
// For every other client the worker learns the lead instead: now and then
// (leadProbeEvery) it asks the kernel for the transmit stamp of the reply
// that leads a send (a probe) and measures stamp − the clock read just
// before the send. Asking costs the send itself: the kernel parses the
// request and copies the packet for the error queue before it takes the
// stamp, so a probe's lead is longer than an ordinary reply's — measured
// with tests/txcost on loopback, by 0.2–0.3 µs, about a quarter of the
// whole. The worker therefore also times the system call of single-reply
// sends, probes and ordinary ones alike (a clock read after it returns),
// and takes the difference between the two as the probe's extra cost
// (probes and timed ordinary sends, controls, take turns at the probe
// spacing, each the first send due after it, so that both are the same
// kind of send: a control that was simply the send after its probe
// sampled warmer sends than the probes where requests come in bursts —
// the probe spacing lands on the first send after an idle pause, the
// slowest; in the accuracy harness the probes' system calls took 4–20 µs
// at the least, their controls' 2, and the lead came out 0):
//
//	lead = m(stamp − read, probes) − (m(return − read, probes) − m(return − read, ordinary sends))
//
// where m is a low order statistic of its samples (below).
//
// The system call's difference also holds the error-queue work after the
// stamp (a copy of the packet queued, the socket's waiters woken), so the
// lead comes out short rather than long: by 0.1 µs or less for warm sends
// in a steady stream (TestBasicTransmitLead: lag 0.65, difference 0.2–0.3,
// what tests/txcost measured for the stamp alone), by about 1 µs of 2.8 for
// the first sends after pauses in the accuracy harness (difference 1.2 µs).
//
// Each of the three is the lower median of the minima of the last
// leadWindows windows of leadWindow samples: the fastest of 16 sends, as
// such a minimum usually comes out. A lead larger than a send's own puts
// T3 after the reply reached the device, which is a new error, while a
// smaller one only leaves part of the old one; a window's minimum is below
// nearly every send of it, so the lead stays short of nearly every send.
// Not the least of the minima: where sends vary (the first after a pause,
// a busy machine) one lucky warm control or probe among 128 decided a
// least, and the accuracy harness saw the lead jump between 0.2 and 4.5
// µs from run to run and within one as such a window came and went; a
// median of minima moves only when most windows do. Samples beyond
// maxLeadSample are ignored, and the lead never exceeds maxLead; it is
// zero until all three are known.
//
// The cost taken off is at most a quarter of the lag. Where the receiver
// is on this host (loopback, a veth), its side of the delivery runs inside
// the sender's system call after the stamp: the socket woken, often a CPU
// too, which on a VM is an exit to the hypervisor. That work varies by
// microseconds from send to send, with nothing to do with the stamp, and
// the difference of two such system calls with it: in the accuracy harness
// (cold sends on loopback) the cost came out anywhere from 0 to 5.1 µs of
// a lag that held at 4.4–6.1 µs, and the lead with it from 4.6 to 0.5.
// What asking for the stamp costs before it is taken is a quarter of the
// lag or less wherever it was measured (tests/txcost on loopback: 0.2–0.3
// µs of about 1; TestBasicTransmitLead 0.14–0.17 of 0.63–0.67).
//
// What is measured is the send's part, whatever the probing reply's kind.
// A plain reply's T3 is the read before the send, so the lead moves it to
// the device. A keyed or NTS reply's T3 is read earlier, before its MAC or
// seal and the rest of the batch, so the same lead leaves it a little
// early — the side of the error chronyd serves, never the other.

const (
	// leadWindow is how many samples make one window's minimum, and
	// leadWindows how many windows' minima an estimate is the median of.
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
	// maxCostShare: the stamp's cost taken off the lag is at most
	// 1/maxCostShare of it (why: below).
	maxCostShare = 4
)

// windowMin keeps the minima of the last leadWindows windows of samples
// and their lower median. The zero value knows nothing until its first
// window is complete.
type windowMin struct {
	n      int                        // samples in the current window
	min    time.Duration              // their minimum
	minima [leadWindows]time.Duration // complete windows' minima, a ring; 0 = none yet
	next   int                        // the ring's slot for the next window
	est    time.Duration              // the lower median of minima; 0 = unknown
}

// observe takes one sample, ignoring one that cannot describe a send: not
// positive (the clock was stepped between the two readings) or beyond
// maxLeadSample (the sender was preempted).
func (w *windowMin) observe(d time.Duration) {
	if d <= 0 || d > maxLeadSample {
		return
	}
	if w.n == 0 || d < w.min {
		w.min = d
	}
	w.n++
	if w.n < leadWindow {
		return
	}
	w.n = 0
	w.minima[w.next] = w.min
	w.next = (w.next + 1) % leadWindows
	known := w.minima
	k := 0
	for _, m := range w.minima {
		if m > 0 {
			known[k] = m
			k++
		}
	}
	// The lower of the two middle values for an even count: the shorter
	// lead, as above. At most leadWindows values, once per window.
	slices.Sort(known[:k])
	w.est = known[(k-1)/2]
}

// leadEstimator combines a probe's three measurements into the lead.
type leadEstimator struct {
	lag       windowMin // probes: kernel transmit stamp − read
	probeSend windowMin // probes: system call return − read
	plainSend windowMin // ordinary single-reply sends: return − read
	est       time.Duration
	cost      time.Duration // what the estimate takes off the lag
}

// The three observations.
func (e *leadEstimator) observeLag(d time.Duration)   { e.lag.observe(d); e.update() }
func (e *leadEstimator) observeProbe(d time.Duration) { e.probeSend.observe(d); e.update() }
func (e *leadEstimator) observePlain(d time.Duration) { e.plainSend.observe(d); e.update() }

func (e *leadEstimator) update() {
	e.est, e.cost = 0, 0
	if e.lag.est > 0 && e.probeSend.est > 0 && e.plainSend.est > 0 {
		e.cost = min(max(0, e.probeSend.est-e.plainSend.est), e.lag.est/maxCostShare)
		e.est = min(e.lag.est-e.cost, maxLead)
	}
}

// lead is the lead to add to a basic reply's transmit timestamp.
func (e *leadEstimator) lead() time.Duration { return e.est }

// parts are what the lead was made of: the probes' lag and the stamp's
// cost taken off it (both 0 until the lead is known), for operators
// (gatectl serverstats) and the accuracy harness.
func (e *leadEstimator) parts() (lag, cost time.Duration) {
	if e.est == 0 {
		return 0, 0
	}
	return e.lag.est, e.cost
}

// leadSend is what a send does for the transmit lead.
type leadSend uint8

const (
	leadNone    leadSend = iota
	leadStamp            // a probe: its first reply asks for the kernel's transmit stamp
	leadControl          // an ordinary single-reply send, timed as a probe's is
)

// leadProbe is the state of a worker's probe of its transmit lead.
type leadProbe struct {
	idx     int       // the reply of the pending send that carries the probe, or -1
	pending bool      // a stamp is awaited
	sys     time.Time // the clock read just before the probe's send
	t3      uint64    // its transmit timestamp, to recognise its stamp
	next    time.Time // no new probe or control before this
	// control: the next due single-reply send is a control, one for each
	// probe, so that both kinds are sampled alike.
	control bool
	every   time.Duration // the spacing: leadProbeEvery (tests shorten it)
	est     leadEstimator // what the probes measured
}

// take decides what a send whose first reply was built at now does for
// the lead; single says it carries one reply. Nothing until the spacing
// passed since the last probe or control (nor while a stamp is awaited,
// for at most leadProbeTimeout); then a control if one is owed and the
// send is single, else a probe, which the caller arms. While the worker
// only sends batches (no control can be timed alike) it probes once per
// leadProbeTimeout.
func (p *leadProbe) take(now time.Time, single bool) leadSend {
	if p.pending && now.Sub(p.sys) < leadProbeTimeout || now.Before(p.next) {
		return leadNone
	}
	if p.control {
		if single {
			p.control = false
			p.next = now.Add(p.every)
			return leadControl
		}
		if now.Sub(p.sys) < leadProbeTimeout {
			return leadNone
		}
	}
	return leadStamp
}

// arm records a probe on reply idx of a send, read sys just before it,
// with the transmit timestamp t3.
func (p *leadProbe) arm(idx int, sys time.Time, t3 uint64) {
	p.idx, p.pending, p.sys, p.t3 = idx, true, sys, t3
	p.next = sys.Add(p.every)
	p.control = true
}

// sent times a single-reply send of kind k read at sys that returned at
// ret.
func (p *leadProbe) sent(k leadSend, sys, ret time.Time) {
	switch k {
	case leadStamp:
		p.est.observeProbe(ret.Sub(sys))
	case leadControl:
		p.est.observePlain(ret.Sub(sys))
	}
}

// match takes a transmit stamp tx of a reply whose transmit timestamp is
// t3: when it is the probe's, it feeds the estimator and reports true.
func (p *leadProbe) match(t3 uint64, tx time.Time) bool {
	if !p.pending || t3 != p.t3 {
		return false
	}
	p.pending = false
	p.est.observeLag(tx.Sub(p.sys))
	return true
}
