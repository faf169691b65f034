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
	// Slower windows do not raise it until every window it remembers
	// was slower; a faster one lowers it at once.
	for range leadWindows - 1 {
		window(4 * time.Microsecond)
		if w.est != 2500*time.Nanosecond {
			t.Fatalf("estimate %v: slower windows raised it while a faster one is remembered", w.est)
		}
	}
	window(5 * time.Microsecond)
	if w.est != 4*time.Microsecond {
		t.Fatalf("estimate %v, want 4µs once the 2.5µs window is forgotten", w.est)
	}
	window(time.Microsecond)
	if w.est != time.Microsecond {
		t.Fatalf("estimate %v, want 1µs at once", w.est)
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
	// Probes that cost nothing extra (or ordinary sends timed slower)
	// leave the lag as it is; a cost beyond the lag leaves no lead.
	var f leadEstimator
	fill(f.observeLag, us(1.5))
	fill(f.observeProbe, us(2.0))
	fill(f.observePlain, us(2.2))
	if f.lead() != us(1.5) {
		t.Fatalf("lead %v, want the lag 1.5µs", f.lead())
	}
	var g leadEstimator
	fill(g.observeLag, us(0.3))
	fill(g.observeProbe, us(2.0))
	fill(g.observePlain, us(1.0))
	if g.lead() != 0 {
		t.Fatalf("lead %v, want 0", g.lead())
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
	p := leadProbe{idx: -1, every: leadProbeEvery}
	if !p.due(t0) {
		t.Fatal("a fresh probe is not due")
	}
	p.arm(0, t0, 0xabcdef00)
	if p.due(t0.Add(leadProbeEvery)) {
		t.Fatal("due while a stamp is awaited")
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
	if p.due(t0.Add(leadProbeEvery)) {
		t.Fatal("due while the ordinary send the probe asked for is owed")
	}
	// One ordinary send is timed per probe.
	p.sent(true, t0, t0.Add(2*time.Microsecond))
	p.sent(false, t0, t0.Add(time.Microsecond))
	p.sent(false, t0, t0.Add(time.Microsecond))
	if p.est.probeSend.n != 1 || p.est.plainSend.n != 1 {
		t.Fatalf("timed %d probe and %d ordinary sends, want 1 and 1", p.est.probeSend.n, p.est.plainSend.n)
	}
	if p.due(t0.Add(leadProbeEvery - time.Nanosecond)) {
		t.Fatal("due before the spacing passed")
	}
	if !p.due(t0.Add(leadProbeEvery)) {
		t.Fatal("not due after the spacing")
	}
	// Without single-reply sends the owed one never comes: probes go on
	// once per leadProbeTimeout.
	p.arm(0, t0.Add(time.Second), 7)
	p.match(7, t0.Add(time.Second+time.Microsecond))
	if p.due(t0.Add(time.Second + leadProbeTimeout - time.Nanosecond)) {
		t.Fatal("due while the owed send is younger than the timeout")
	}
	if !p.due(t0.Add(time.Second + leadProbeTimeout)) {
		t.Fatal("probes stopped for good without single-reply sends")
	}
	// A stamp that never comes is given up after leadProbeTimeout.
	t1 := t0.Add(3 * time.Second)
	p.arm(0, t1, 1)
	if p.due(t1.Add(leadProbeTimeout - time.Nanosecond)) {
		t.Fatal("gave up before the timeout")
	}
	if !p.due(t1.Add(leadProbeTimeout)) {
		t.Fatal("did not give up after the timeout")
	}
}
