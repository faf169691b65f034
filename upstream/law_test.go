package upstream

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// lawError is how far the published law may be from SoftClock.Now: both round to the
// nanosecond, Now twice (local time, then the correction).
const lawError = 4 * time.Nanosecond

// served evaluates a law as ntp.ServedState.Serve does.
func (l Law) served(sys time.Time) time.Time {
	return sys.Add(l.Offset).Add(time.Duration(float64(sys.Sub(l.Base)) * l.Freq))
}

// TestLawMatchesNow: at random points between reading the law and its Until, the law
// serves what the clock does; ten seconds past Until it no longer does, so Until is the
// slew's end and not merely a bound. (Under a Discipliner the two slews nearly cancel in
// served minus system time: what is left of the slope change is about MaxSlew², hence ten
// seconds to see it.) Clocks are random: configured slew rate, learned
// frequency, offsets slewed or stepped, with and without a Discipliner (whose kernel slew
// ends at a different time from the served clock's).
func TestLawMatchesNow(t *testing.T) {
	const seed = 20261204
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 8))
	for i := range 300 {
		opts := ClockOptions{MaxSlew: (50 + 950*rng.Float64()) * 1e-6}
		if i%2 == 1 {
			opts.Discipliner = &fakeDiscipliner{}
		}
		c := NewSoftClock(opts)
		freq := (rng.Float64() - 0.5) * 100e-6
		now := feedLine(t, c, t0, time.Duration(rng.Int64N(int64(time.Second)))-500*time.Millisecond, freq, 16*time.Second, 1+rng.IntN(6))
		// A last estimate off the line starts a slew of up to ±100 ms.
		at := now.Add(time.Second)
		off := c.Now(at).Sub(at) + time.Duration(rng.Int64N(int64(200*time.Millisecond))) - 100*time.Millisecond
		if err := c.Update(at.Add(time.Second), estimate(at, off)); err != nil {
			t.Fatal(err)
		}
		sys := at.Add(time.Second + time.Duration(rng.Int64N(int64(10*time.Second))))
		checkLaw(t, c, sys, rng)
	}
}

func checkLaw(t *testing.T, c *SoftClock, sys time.Time, rng *rand.Rand) {
	t.Helper()
	l := c.Law(sys)
	span := time.Hour
	if !l.Until.IsZero() {
		span = l.Until.Sub(sys)
	}
	if span <= 0 {
		t.Fatalf("law read at %v ends at %v", sys, l.Until)
	}
	for range 20 {
		x := sys.Add(time.Duration(rng.Int64N(int64(span))))
		if d := l.served(x).Sub(c.Now(x)).Abs(); d > lawError {
			t.Fatalf("%v after reading, %v before Until: law %v from the clock (law %+v)", x.Sub(sys), span-x.Sub(sys), d, l)
		}
	}
	if l.Until.IsZero() {
		return
	}
	past := l.Until.Add(10 * time.Second)
	if d := l.served(past).Sub(c.Now(past)).Abs(); d <= lawError {
		t.Fatalf("law still holds 10 s after its Until (%v off): Until is too early (law %+v)", d, l)
	}
}

// TestLawUsesConfiguredSlew: a first estimate 10 ms away (below the step threshold) is
// slewed in at the configured 100 ppm for 100 s, and the law's frequency carries that
// rate; the engine used to assume the default 500 ppm.
func TestLawUsesConfiguredSlew(t *testing.T) {
	c := NewSoftClock(ClockOptions{MaxSlew: 100e-6})
	at := t0
	if err := c.Update(at, estimate(at, ms(10))); err != nil {
		t.Fatal(err)
	}
	l := c.Law(at.Add(40 * time.Second))
	if want := at.Add(100 * time.Second); l.Until.Sub(want).Abs() > time.Microsecond {
		t.Fatalf("slew ends at %v, want %v", l.Until.Sub(at), want.Sub(at))
	}
	if math.Abs(l.Freq-100e-6) > 1e-9 || l.Offset.Round(time.Microsecond) != ms(4) {
		t.Fatalf("law %+v: want 4 ms in at 100 ppm", l)
	}
	if after := c.Law(at.Add(100 * time.Second)); !after.Until.IsZero() || after.Freq != 0 || after.Offset != ms(10) {
		t.Fatalf("after the slew: %+v", after)
	}
}

// TestLawUnsynchronised: before any estimate the served clock is the system clock.
func TestLawUnsynchronised(t *testing.T) {
	l := NewSoftClock(ClockOptions{}).Law(t0)
	if l.Offset != 0 || l.Freq != 0 || !l.Until.IsZero() || !l.Base.Equal(t0) {
		t.Fatalf("law %+v", l)
	}
}
