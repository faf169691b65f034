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
