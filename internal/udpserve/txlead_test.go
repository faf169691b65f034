package udpserve

import (
	"testing"
	"time"
)

func TestLeadEstimatorWindowMinimum(t *testing.T) {
	var e leadEstimator
	for i := range leadWindow - 1 {
		e.observe(time.Duration(3000+i) * time.Nanosecond)
		if e.lead() != 0 {
			t.Fatalf("lead %v after %d samples: no lead before a window is complete", e.lead(), i+1)
		}
	}
	if !e.observe(2500 * time.Nanosecond) {
		t.Fatal("the first complete window did not change the estimate")
	}
	if e.lead() != 2500*time.Nanosecond {
		t.Fatalf("lead %v, want the window's minimum 2.5µs", e.lead())
	}
	// Slower windows do not raise the estimate until every window it
	// remembers was slower; a faster one lowers it at once.
	window := func(d time.Duration) {
		for range leadWindow {
			e.observe(d)
		}
	}
	for range leadWindows - 1 {
		window(4 * time.Microsecond)
		if e.lead() != 2500*time.Nanosecond {
			t.Fatalf("lead %v: slower windows raised it while a faster one is remembered", e.lead())
		}
	}
	window(5 * time.Microsecond)
	if e.lead() != 4*time.Microsecond {
		t.Fatalf("lead %v, want 4µs once the 2.5µs window is forgotten", e.lead())
	}
	window(1 * time.Microsecond)
	if e.lead() != time.Microsecond {
		t.Fatalf("lead %v, want 1µs at once", e.lead())
	}
}

func TestLeadEstimatorIgnoresImplausibleSamples(t *testing.T) {
	var e leadEstimator
	for range leadWindow * 3 {
		e.observe(0)
		e.observe(-time.Microsecond)               // the clock stepped back between the readings
		e.observe(maxLeadSample + time.Nanosecond) // a preempted send
	}
	if e.lead() != 0 || e.n != 0 {
		t.Fatalf("lead %v after %d counted samples: implausible samples must not count", e.lead(), e.n)
	}
	for range leadWindow {
		e.observe(maxLeadSample)
	}
	if e.lead() != maxLead {
		t.Fatalf("lead %v, want the cap %v", e.lead(), maxLead)
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
	if p.due(t0.Add(leadProbeEvery - time.Nanosecond)) {
		t.Fatal("due before the spacing passed")
	}
	if !p.due(t0.Add(leadProbeEvery)) {
		t.Fatal("not due after the spacing")
	}
	// A stamp that never comes is given up after leadProbeTimeout.
	t1 := t0.Add(time.Second)
	p.arm(0, t1, 1)
	if p.due(t1.Add(leadProbeTimeout - time.Nanosecond)) {
		t.Fatal("gave up before the timeout")
	}
	if !p.due(t1.Add(leadProbeTimeout)) {
		t.Fatal("did not give up after the timeout")
	}
}
