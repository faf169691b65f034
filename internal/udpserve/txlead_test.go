package udpserve

import (
	"testing"
	"time"
)

func TestWindowMinimum(t *testing.T) {
	var w windowMin
	window := func(d time.Duration) {
		for range leadWindow {
			w.observe(d)
		}
	}
	for i := range leadWindow - 1 {
		w.observe(time.Duration(3000+i) * time.Nanosecond)
		if w.est != 0 {
			t.Fatalf("estimate %v after %d samples: none before a window is complete", w.est, i+1)
		}
	}
	w.observe(2500 * time.Nanosecond)
	if w.est != 2500*time.Nanosecond {
		t.Fatalf("estimate %v, want the window's minimum 2.5µs", w.est)
	}
	// The lower median of the windows' minima: with windows of 2.5 and 4
	// µs the lower one, then 4 once most windows were at 4.
	window(4 * time.Microsecond)
	if w.est != 2500*time.Nanosecond {
		t.Fatalf("estimate %v over windows of 2.5 and 4µs, want the lower 2.5µs", w.est)
	}
	window(4 * time.Microsecond)
	if w.est != 4*time.Microsecond {
		t.Fatalf("estimate %v over windows of 2.5, 4 and 4µs, want 4µs", w.est)
	}
	for range leadWindows {
		window(4 * time.Microsecond)
	}
	// One lucky fast window, or one slow one, among the remembered does not
	// move it; most of them do, and the oldest are forgotten.
	window(time.Microsecond)
	if w.est != 4*time.Microsecond {
		t.Fatalf("estimate %v: one 1µs window among 4µs ones moved it", w.est)
	}
	window(9 * time.Microsecond)
	if w.est != 4*time.Microsecond {
		t.Fatalf("estimate %v: one 9µs window among 4µs ones moved it", w.est)
	}
	for range leadWindows/2 + 1 {
		window(2 * time.Microsecond)
	}
	if w.est != 2*time.Microsecond {
		t.Fatalf("estimate %v, want 2µs once most windows were at 2µs", w.est)
	}
	for range leadWindows {
		window(5 * time.Microsecond)
	}
	if w.est != 5*time.Microsecond {
		t.Fatalf("estimate %v, want 5µs once every remembered window was", w.est)
	}
}

func TestWindowMinimumIgnoresImplausibleSamples(t *testing.T) {
	var w windowMin
	for range leadWindow * 3 {
		w.observe(0)
		w.observe(-time.Microsecond)               // the clock stepped back between the readings
		w.observe(maxLeadSample + time.Nanosecond) // a preempted send
	}
	if w.est != 0 || w.n != 0 {
		t.Fatalf("estimate %v after %d counted samples: implausible samples must not count", w.est, w.n)
	}
}

// The lead is the probes' lag less what asking for the stamp cost them,
// known only once all three measurements are, and within [0, maxLead].
func TestLeadEstimator(t *testing.T) {
	us := func(f float64) time.Duration { return time.Duration(f * 1e3) }
	fill := func(obs func(time.Duration), d time.Duration) {
		for range leadWindow {
			obs(d)
		}
	}
	var e leadEstimator
	fill(e.observeLag, us(1.5))
	fill(e.observeProbe, us(2.4))
	if e.lead() != 0 {
		t.Fatalf("lead %v before ordinary sends were timed", e.lead())
	}
	fill(e.observePlain, us(2.1))
	if e.lead() != us(1.2) {
		t.Fatalf("lead %v, want 1.5 − (2.4 − 2.1) = 1.2µs", e.lead())
	}
	if lag, cost := e.parts(); lag != us(1.5) || cost != us(0.3) {
		t.Fatalf("parts: lag %v, cost %v; want 1.5µs and 0.3µs", lag, cost)
	}
	// Probes that cost nothing extra (or ordinary sends timed slower)
	// leave the lag as it is.
	var f leadEstimator
	fill(f.observeLag, us(1.5))
	fill(f.observeProbe, us(2.0))
	fill(f.observePlain, us(2.2))
	if f.lead() != us(1.5) {
		t.Fatalf("lead %v, want the lag 1.5µs", f.lead())
	}
	// A cost measured beyond a quarter of the lag is the receiver's work
	// in the system calls, not the stamp's: a quarter is taken off.
	var g leadEstimator
	fill(g.observeLag, us(2.0))
	fill(g.observeProbe, us(4.0))
	fill(g.observePlain, us(1.0))
	if g.lead() != us(1.5) {
		t.Fatalf("lead %v, want 2 − 2/4 = 1.5µs", g.lead())
	}
	if lag, cost := g.parts(); lag != us(2.0) || cost != us(0.5) {
		t.Fatalf("parts: lag %v, cost %v; want 2µs and 0.5µs", lag, cost)
	}
	var h leadEstimator
	fill(h.observeLag, maxLeadSample)
	fill(h.observeProbe, maxLeadSample)
	fill(h.observePlain, maxLeadSample)
	if h.lead() != maxLead {
		t.Fatalf("lead %v, want the cap %v", h.lead(), maxLead)
	}
}

func TestLeadProbe(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	every := leadProbeEvery
	p := leadProbe{idx: -1, every: every}
	if k := p.take(t0, true); k != leadStamp {
		t.Fatalf("a fresh worker's first send is %v, want a probe", k)
	}
	p.arm(0, t0, 0xabcdef00)
	if k := p.take(t0.Add(every), true); k != leadNone {
		t.Fatalf("%v while a stamp is awaited", k)
	}
	if p.match(0xabcdef02, t0.Add(3*time.Microsecond)) {
		t.Fatal("matched another reply's stamp")
	}
	if !p.match(0xabcdef00, t0.Add(3*time.Microsecond)) || p.pending {
		t.Fatal("the probe's own stamp did not match")
	}
	if p.match(0xabcdef00, t0.Add(4*time.Microsecond)) {
		t.Fatal("a stamp matched twice")
	}
	if p.est.lag.n != 1 {
		t.Fatalf("%d lag samples, want 1", p.est.lag.n)
	}
	// The control is the first single-reply send due after the spacing,
	// not the send right after the probe: both kinds land alike.
	if k := p.take(t0.Add(every-time.Nanosecond), true); k != leadNone {
		t.Fatalf("%v before the spacing passed", k)
	}
	if k := p.take(t0.Add(every), false); k != leadNone {
		t.Fatalf("a batch is %v while a control is owed", k)
	}
	tc := t0.Add(every + time.Millisecond)
	if k := p.take(tc, true); k != leadControl {
		t.Fatalf("the first single send after the spacing is %v, want the control", k)
	}
	if k := p.take(tc.Add(every-time.Nanosecond), true); k != leadNone {
		t.Fatalf("%v before the spacing after the control passed", k)
	}
	if k := p.take(tc.Add(every), true); k != leadStamp {
		t.Fatalf("%v after the control and the spacing, want a probe", k)
	}
	p.sent(leadStamp, t0, t0.Add(2*time.Microsecond))
	p.sent(leadControl, t0, t0.Add(time.Microsecond))
	p.sent(leadNone, t0, t0.Add(time.Microsecond))
	if p.est.probeSend.n != 1 || p.est.plainSend.n != 1 {
		t.Fatalf("timed %d probe and %d ordinary sends, want 1 and 1", p.est.probeSend.n, p.est.plainSend.n)
	}
	// Without single-reply sends the control never comes: probes go on
	// once per leadProbeTimeout.
	t1 := t0.Add(time.Second)
	p.arm(0, t1, 7)
	p.match(7, t1.Add(time.Microsecond))
	if k := p.take(t1.Add(leadProbeTimeout-time.Nanosecond), false); k != leadNone {
		t.Fatalf("a batch is %v while the control is younger than the timeout", k)
	}
	if k := p.take(t1.Add(leadProbeTimeout), false); k != leadStamp {
		t.Fatalf("probes stopped for good without single-reply sends (%v)", k)
	}
	// A stamp that never comes is given up after leadProbeTimeout.
	t2 := t0.Add(3 * time.Second)
	p.arm(0, t2, 1)
	if k := p.take(t2.Add(leadProbeTimeout-time.Nanosecond), false); k != leadNone {
		t.Fatalf("%v before the lost stamp's timeout", k)
	}
	if k := p.take(t2.Add(leadProbeTimeout), false); k != leadStamp {
		t.Fatalf("did not give up the lost stamp after the timeout (%v)", k)
	}
}
