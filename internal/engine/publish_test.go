package engine

import (
	"testing"
	"time"

	"timegate/upstream"
)

// TestLawMatchesSoftClock: the published law serves exactly what the soft clock serves,
// from the moment it is published until the slew in progress ends, which is when the
// engine publishes again.
func TestLawMatchesSoftClock(t *testing.T) {
	sys0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, off := range []time.Duration{10 * time.Millisecond, -3 * time.Millisecond, 0} {
		c := upstream.NewSoftClock(upstream.ClockOptions{})
		est := upstream.Estimate{Time: sys0, Newest: sys0, Offset: off, Stratum: 1, RootDispersion: time.Millisecond}
		if err := c.Update(sys0, est); err != nil {
			t.Fatal(err)
		}
		sys := sys0.Add(3 * time.Second)
		r := &runner{Engine: &Engine{clock: c, opts: Options{Precision: -20}}}
		st := c.Status(sys)
		pub, until := r.served(sys, &st)
		if pub.Stratum != 2 || !st.Synchronised {
			t.Fatalf("published %+v", pub)
		}
		wantEnd := sys0.Add(time.Duration(float64(off.Abs()) / upstream.DefaultMaxSlew))
		if off == 0 {
			wantEnd = sys.Add(maxRepublish)
		}
		if d := until.Sub(wantEnd).Abs(); d > time.Millisecond {
			t.Fatalf("offset %v: law exact until %v, want the slew's end %v", off, until, wantEnd)
		}
		for x := sys; !x.After(until); x = x.Add(until.Sub(sys) / 16) {
			served := pub.Serve(x)
			if d := served.Sub(c.Now(x)).Abs(); d > 100*time.Nanosecond {
				t.Fatalf("offset %v at %v: law serves %v, the clock %v", off, x.Sub(sys0), served, c.Now(x))
			}
		}
	}
}

type nopDiscipliner struct{}

func (nopDiscipliner) Step(time.Duration) error         { return nil }
func (nopDiscipliner) Adjust(upstream.Adjustment) error { return nil }

// TestLawUnderDiscipliner: with `clockcontrol on` the system clock follows the served
// clock, so served minus system time barely moves even though the soft clock has learned
// a frequency. Probing the far future at the default slew rate read that frequency as a
// pending slew and served −490 ppm, 29 ms off after a minute; the published law must serve
// what the clock does until the next refresh.
func TestLawUnderDiscipliner(t *testing.T) {
	c := upstream.NewSoftClock(upstream.ClockOptions{Discipliner: nopDiscipliner{}})
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 8 {
		at := t0.Add(time.Duration(i) * 64 * time.Second)
		off := time.Duration(float64(at.Sub(t0)) * 10e-6) // the system clock is 10 ppm slow
		if err := c.Update(at.Add(time.Second), upstream.Estimate{Time: at, Newest: at, Offset: off, Stratum: 1}); err != nil {
			t.Fatal(err)
		}
	}
	sys := t0.Add(2000 * time.Second)
	r := &runner{Engine: &Engine{clock: c, opts: Options{Precision: -20}}}
	st := c.Status(sys)
	pub, until := r.served(sys, &st)
	if until.Sub(sys) != maxRepublish {
		t.Fatalf("no slew in progress, yet the law ends after %v", until.Sub(sys))
	}
	for x := sys; !x.After(until); x = x.Add(time.Second) {
		if d := pub.Serve(x).Sub(c.Now(x)).Abs(); d > 100*time.Nanosecond {
			t.Fatalf("%v after publishing: law %v off the clock (freq %g)", x.Sub(sys), d, pub.Freq)
		}
	}
}
