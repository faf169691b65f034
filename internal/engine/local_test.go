package engine

import (
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/ntp"
	"timegate/upstream"
)

// `local stratum 8 distance 0.05`: while the holdover's root distance is
// under 50 ms the soft clock's state is served; past it the local clock
// takes over at stratum 8 with refid LOCL, and its root dispersion goes on
// from the held-over bound at PHI + skew per second, never reset; after the
// holdover limit too.
func TestLocalDistanceAndHonestDispersion(t *testing.T) {
	t0 := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	c := upstream.NewSoftClock(upstream.ClockOptions{HoldoverLimit: 2 * time.Hour})
	for i := range 20 {
		at := t0.Add(time.Duration(i) * 64 * time.Second)
		if err := c.Update(at, upstream.Estimate{Time: at, Newest: at, Offset: time.Millisecond, Stratum: 1,
			RootDelay: 4 * time.Millisecond, RootDispersion: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	last := t0.Add(19 * 64 * time.Second)
	c.Lose(upstream.Reason{Kind: upstream.ReasonNoSources})
	fallback := &ntp.ServedState{Stratum: 8, RefID: 0x7f7f0101, RootDispersion: 10 * time.Millisecond}
	r := &runner{Engine: &Engine{clock: c, log: zaptest.NewLogger(t), opts: Options{
		Fallback: fallback, LocalDistance: 50 * time.Millisecond, Holdover: 2 * time.Hour}}}
	var prev time.Duration
	local := false
	for d := time.Minute; d < 4*time.Hour; d += time.Minute {
		sys := last.Add(d)
		st, pub, _, _ := r.states(sys)
		dist := pub.RootDelay/2 + pub.RootDispersion
		if dist < prev {
			t.Fatalf("%v into holdover the bound fell from %v to %v", d, prev, dist)
		}
		prev = dist
		if pub.Stratum == 8 {
			if !local && dist < 50*time.Millisecond {
				t.Fatalf("local took over at distance %v", dist)
			}
			local = true
			if pub.RefID != 0x7f7f0101 || pub.Leap != ntp.LeapNone || pub.RootDelay != 0 {
				t.Fatalf("local state %+v", pub)
			}
			continue
		}
		if local {
			t.Fatalf("%v: back from local without a source: %+v", d, pub)
		}
		if !st.Synchronised || pub.Stratum != 2 || dist > 50*time.Millisecond {
			t.Fatalf("%v: holdover state %+v (distance %v)", d, pub, dist)
		}
	}
	if !local {
		t.Fatal("the local clock never took over")
	}
	// Four hours at PHI alone is 216 ms: the bound kept growing.
	if prev < 200*time.Millisecond {
		t.Errorf("local bound after 4 h: %v", prev)
	}
}
