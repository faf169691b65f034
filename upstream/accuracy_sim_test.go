package upstream_test

import (
	"math"
	"testing"
	"time"

	_ "timegate/upstream"
	"timegate/upstream/simtest"
)

// loopbackSources are n honest servers on a path like loopback's: tens of microseconds,
// a few microseconds of jitter, no asymmetry; lie[i] shifts server i.
func loopbackSources(lie ...time.Duration) []simtest.Source {
	var out []simtest.Source
	for i, l := range lie {
		out = append(out, simtest.Source{
			Name: "lo" + string(rune('a'+i)), Delay: 15 * time.Microsecond, Jitter: 3 * time.Microsecond,
			Lie: l, Stratum: 2, RootDispersion: 20 * time.Microsecond, Precision: 30 * time.Nanosecond,
		})
	}
	return out
}

func TestExperimentFirstSync(t *testing.T) {
	for _, poll := range []int8{-4, 6} {
		seed := uint64(1)
		net := simtest.New(seed, simStart, -500*time.Millisecond, 0, loopbackSources(0, 0, 0))
		w := newPollWorld(t, seed, net, nil, poll, poll, 7*time.Millisecond)
		maxExc := 0.0
		var at time.Duration
		w.runUntil(200*time.Second, func() {
			if w.synced < 0 {
				return
			}
			e := w.servedError()
			if math.Abs(e) > maxExc {
				maxExc, at = math.Abs(e), w.net.Elapsed()
			}
			if w.net.Elapsed()%(5*time.Second) == 0 {
				st := w.clock.Status(w.net.Sys())
				t.Logf("poll %d t=%v err=%.1fµs freq=%.2fppm", poll, w.net.Elapsed(), e*1e6, st.Frequency*1e6)
			}
		})
		t.Logf("poll %d synced at %v max excursion %.1f µs at %v", poll, w.synced, maxExc*1e6, at)
	}
}
