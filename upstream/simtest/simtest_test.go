package simtest

import (
	"testing"
	"time"

	"timegate/upstream"
)

var start = time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)

func TestExchangeMeasuresTheSystemClock(t *testing.T) {
	quiet := Source{Delay: 10 * time.Millisecond, Stratum: 1}
	skewed := quiet
	skewed.Asymmetry = 2 * time.Millisecond
	liar := quiet
	liar.Lie = 3 * time.Second
	n := New(1, start, 250*time.Millisecond, 20e-6, []Source{quiet, skewed, liar, {Down: true}})
	n.Advance(time.Hour)
	// The system clock is 250 ms + 20 ppm · 3600 s = 322 ms ahead: offsets are −322 ms,
	// biased by +asymmetry/2, or shifted by the lie.
	truth := -(250*time.Millisecond + 72*time.Millisecond)
	for i, want := range []time.Duration{truth, truth + time.Millisecond, truth + 3*time.Second} {
		ex, ok := n.Exchange(i)
		if !ok {
			t.Fatalf("source %d down", i)
		}
		s := SampleOf(ex, nil, 0)
		if (s.Offset - want).Abs() > time.Microsecond {
			t.Errorf("source %d: offset %v, want %v", i, s.Offset, want)
		}
		// The round trip is two delays, measured on a clock that runs 20 ppm fast.
		if rtt := 20 * time.Millisecond; (s.Delay - rtt).Abs() > time.Microsecond {
			t.Errorf("source %d: delay %v, want %v", i, s.Delay, rtt)
		}
		if s.Stratum != 1 || !s.Time.Equal(ex.T4) {
			t.Errorf("source %d: sample %+v", i, s)
		}
	}
	if _, ok := n.Exchange(3); ok {
		t.Error("a down source answered")
	}
}

func TestKernelFollowsTheAdjustmentLaw(t *testing.T) {
	n := New(1, start, 0, 0, nil)
	k := n.Kernel()
	if err := k.Step(-time.Second); err != nil {
		t.Fatal(err)
	}
	if got := n.Sys().Sub(n.True()); got != -time.Second {
		t.Fatalf("after a step: %v", got)
	}
	if err := k.Adjust(upstream.Adjustment{Offset: time.Millisecond, Rate: 500e-6, Freq: 10e-6}); err != nil {
		t.Fatal(err)
	}
	n.Advance(time.Second) // half the slew, plus 10 µs of frequency
	if got := n.Sys().Sub(n.True()); (got - (-time.Second + 510*time.Microsecond)).Abs() > 10*time.Nanosecond {
		t.Fatalf("mid-slew: %v", got)
	}
	n.Advance(99 * time.Second) // slew done; frequency runs on
	if got := n.Sys().Sub(n.True()); (got - (-time.Second + 2*time.Millisecond)).Abs() > 10*time.Nanosecond {
		t.Fatalf("after the slew: %v", got)
	}
	if len(k.Steps) != 1 || len(k.Adjusts) != 1 {
		t.Fatalf("recorded %v %v", k.Steps, k.Adjusts)
	}
}
