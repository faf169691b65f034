package upstream

import (
	"math"
	"testing"
	"time"
)

// A leap shift moves served time by exactly the leap and nothing else: the
// frequency stays, and estimates after the leap (the sources' offsets moved
// by the same second) need no slew.
func TestShiftLeapKeepsFrequency(t *testing.T) {
	drift := 20e-6
	off := func(at time.Time) time.Duration {
		return ms(5) + time.Duration(drift*float64(at.Sub(t0)))
	}
	var at time.Time
	c, control := NewSoftClock(ClockOptions{}), NewSoftClock(ClockOptions{})
	for i := 0; i < 12; i++ {
		at = t0.Add(time.Duration(i) * 64 * time.Second)
		for _, c := range []*SoftClock{c, control} {
			if err := c.Update(at, estimate(at, off(at))); err != nil {
				t.Fatal(err)
			}
		}
	}
	sys := at.Add(30 * time.Second)
	before, freq := c.Now(sys), c.Status(sys).Frequency
	if err := c.ShiftLeap(sys, -time.Second); err != nil {
		t.Fatal(err)
	}
	if got := before.Sub(c.Now(sys)); got != time.Second {
		t.Fatalf("served moved %v, want 1 s", got)
	}
	if f := c.Status(sys).Frequency; math.Abs(f-freq) > 1e-12 {
		t.Fatalf("frequency %v → %v", freq, f)
	}
	// The next estimate moves the shifted clock exactly as it moves one that
	// never saw the leap.
	next := sys.Add(34 * time.Second)
	if err := c.Update(next, estimate(next, off(next)-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := control.Update(next, estimate(next, off(next))); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, 10 * time.Second, 600 * time.Second} {
		if diff := control.Now(next.Add(d)).Sub(c.Now(next.Add(d))) - time.Second; diff.Abs() > time.Microsecond {
			t.Fatalf("%v after the next estimate the shifted clock is %v off the control", d, diff)
		}
	}
}

func TestShiftSamples(t *testing.T) {
	var f Filter
	f.Add(Sample{Time: t0, Offset: ms(3), Delay: ms(1), Dispersion: ms(1), Stratum: 1}, 0)
	f.shiftOffsets(-time.Second)
	st, _ := f.Stats()
	if st.Offset != ms(3)-time.Second || f.reg[0].offset != st.Offset.Seconds() {
		t.Fatalf("stats %+v", st)
	}
}
