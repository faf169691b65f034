package upstream

import (
	"errors"
	"math"
	"testing"
	"time"
)

// fakeDiscipliner records what the soft clock orders, and can fail.
type fakeDiscipliner struct {
	steps   []time.Duration
	adjusts []Adjustment
	fail    error
}

func (f *fakeDiscipliner) Step(offset time.Duration) error {
	if f.fail != nil {
		return f.fail
	}
	f.steps = append(f.steps, offset)
	return nil
}

func (f *fakeDiscipliner) Adjust(a Adjustment) error {
	if f.fail != nil {
		return f.fail
	}
	f.adjusts = append(f.adjusts, a)
	return nil
}

func TestSoftClockOrdersDiscipliner(t *testing.T) {
	d := &fakeDiscipliner{}
	c := NewSoftClock(ClockOptions{Discipliner: d})
	if err := c.Update(t0, estimate(t0, ms(300))); err != nil {
		t.Fatal(err)
	}
	if len(d.steps) != 1 || d.steps[0] != ms(300) {
		t.Fatalf("steps %v, want one of 300ms", d.steps)
	}
	if len(d.adjusts) != 1 || d.adjusts[0] != (Adjustment{Offset: 0, Rate: DefaultMaxSlew, Freq: 0}) {
		t.Fatalf("adjusts %+v", d.adjusts)
	}
	// The system clock now reads 300 ms later at the same instant: local time is
	// continuous and the served time is the system time.
	sys := t0.Add(ms(300))
	if got := c.Local(sys); !got.Equal(t0) {
		t.Fatalf("local time jumped by %v", got.Sub(t0))
	}
	if got := c.Now(sys); !got.Equal(sys) {
		t.Fatalf("served %v, system %v", got, sys)
	}

	// A later estimate 2 ms further is slewed: the kernel is told the whole 2 ms at the
	// slew rate, and served time keeps equal to what the system clock will read.
	t1 := t0.Add(16 * time.Second)
	sys1 := t1.Add(ms(300))
	if err := c.Update(sys1, estimate(t1, ms(302))); err != nil {
		t.Fatal(err)
	}
	if len(d.steps) != 1 {
		t.Fatalf("stepped again: %v", d.steps)
	}
	a := d.adjusts[len(d.adjusts)-1]
	if a.Rate != DefaultMaxSlew || math.Abs(a.Offset.Seconds()-0.002) > 1e-6 {
		// The fit has two points (300 ms and 302 ms) and no slope yet: the target is the
		// newest, 302 ms (the mean would lag a drifting clock).
		t.Fatalf("adjust %+v, want 2 ms at 500 ppm", a)
	}
	// Follow the kernel's law for 10 s: the system clock gains 2 ms in 4 s, then runs on.
	kernel := func(at time.Duration) time.Duration {
		return ms(300) + min(at, 4*time.Second)/2000
	}
	for _, at := range []time.Duration{0, time.Second, 2 * time.Second, 10 * time.Second} {
		sysAt := t1.Add(at + kernel(at))
		if diff := c.Now(sysAt).Sub(sysAt); diff.Abs() > time.Microsecond {
			t.Fatalf("%v after the order: served − system = %v", at, diff)
		}
	}
}

func TestSoftClockDisciplinerFailure(t *testing.T) {
	boom := errors.New("adjtimex: operation not permitted")
	d := &fakeDiscipliner{fail: boom}
	c := NewSoftClock(ClockOptions{Discipliner: d})
	err := c.Update(t0, estimate(t0, ms(300)))
	if !errors.Is(err, ErrDiscipline) || !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	// The served clock is updated regardless; the system clock simply did not move.
	if got := c.Now(t0); !got.Equal(t0.Add(ms(300))) {
		t.Fatalf("served %v", got.Sub(t0))
	}
	if !c.Status(t0).Synchronised {
		t.Fatal("a discipline failure must not unsynchronise the served clock")
	}
}

func TestSoftClockWithoutDisciplinerLeavesSystemTime(t *testing.T) {
	c := NewSoftClock(ClockOptions{})
	if err := c.Update(t0, estimate(t0, ms(300))); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{0, time.Hour} {
		if sys := t0.Add(at); !c.Local(sys).Equal(sys) {
			t.Fatal("local time differs from system time without a discipliner")
		}
	}
}
