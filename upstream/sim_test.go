package upstream_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"timegate/upstream"
	"timegate/upstream/simtest"
)

// gateway is a stand-in for the per-source poll state machine, driving the real filter,
// mitigation and soft clock against a simtest.Net: iburst, a fixed poll, an 8-bit reach
// register and RFC 5905 §10.1 timeouts. The lead's state machine replaces it later; the
// checks below stay the same.
type gateway struct {
	t     *testing.T
	net   *simtest.Net
	clock *upstream.SoftClock
	opts  upstream.SelectOptions
	srcs  []gwSource
	liars []int // indexes of lying sources, never to be selected
	poll  time.Duration

	firstSync time.Duration // true elapsed time of the first synchronisation, −1 before
	res       upstream.Result
}

type gwSource struct {
	filter upstream.Filter
	reach  uint8
	polls  int
	next   time.Duration // true elapsed time of the next poll
}

const (
	simPrecision = time.Microsecond
	iburstCount  = 6
	iburstGap    = 2 * time.Second
)

func newGateway(t *testing.T, net *simtest.Net, opts upstream.ClockOptions, liars []int) *gateway {
	g := &gateway{
		t: t, net: net, clock: upstream.NewSoftClock(opts), liars: liars,
		srcs: make([]gwSource, len(net.Sources)), poll: 16 * time.Second, firstSync: -1,
	}
	for i := range g.srcs {
		g.srcs[i].filter.Precision = simPrecision
		g.srcs[i].next = time.Duration(i) * 300 * time.Millisecond // stagger the sources
	}
	return g
}

// tick advances true time by one second, polls the sources that are due, and runs a
// mitigation round if any of them answered or timed out.
func (g *gateway) tick() {
	g.net.Advance(time.Second)
	polled := false
	for i := range g.srcs {
		s := &g.srcs[i]
		if g.net.Elapsed() < s.next {
			continue
		}
		g.pollSource(i)
		polled = true
	}
	if polled {
		g.mitigate()
	}
}

func (g *gateway) pollSource(i int) {
	s := &g.srcs[i]
	s.polls++
	s.next = g.net.Elapsed() + g.poll
	if s.polls < iburstCount {
		s.next = g.net.Elapsed() + iburstGap
	}
	s.reach <<= 1
	ex, ok := g.net.Exchange(i)
	if !ok {
		if s.reach&7 == 0 {
			s.filter.Timeout(g.clock.Local(g.net.Sys()))
		}
		return
	}
	s.reach |= 1
	s.filter.Add(simtest.SampleOf(ex, g.clock.Local, simPrecision), g.poll)
}

func (g *gateway) mitigate() {
	sys := g.net.Sys()
	var cands []upstream.Candidate
	var index []int // candidate position → source index
	for i := range g.srcs {
		c, ok := g.srcs[i].filter.Candidate()
		if !ok || g.srcs[i].reach == 0 {
			continue
		}
		c.ID, c.RefID = uint64(i+1), uint32(0x7f000001+i)
		cands = append(cands, c)
		index = append(index, i)
	}
	g.res = upstream.Mitigate(g.clock.Local(sys), cands, g.opts)
	if !g.res.OK() {
		g.clock.Lose(g.res.Reason)
		return
	}
	for _, k := range slices.Concat(g.res.Truechimers, g.res.Survivors) {
		if slices.Contains(g.liars, index[k]) {
			g.t.Fatalf("at %v: liar %d selected: %+v", g.net.Elapsed(), index[k], g.res.Selection)
		}
	}
	g.opts.SystemPeer = g.res.Estimate.PeerID
	if err := g.clock.Update(sys, g.res.Estimate); err != nil {
		g.t.Fatalf("at %v: update: %v", g.net.Elapsed(), err)
	}
	if g.firstSync < 0 {
		g.firstSync = g.net.Elapsed()
	}
}

// servedError is served time minus true time, in seconds.
func (g *gateway) servedError() float64 {
	return g.clock.Now(g.net.Sys()).Sub(g.net.True()).Seconds()
}

// checkHonest fails unless a synchronised gateway's root distance bounds its true error.
func (g *gateway) checkHonest(st upstream.Status, errS float64) {
	if !st.Synchronised {
		return
	}
	bound := (st.RootDelay/2 + st.RootDispersion).Seconds()
	if math.Abs(errS) > bound {
		g.t.Fatalf("at %v: served error %.6f s exceeds root distance %.6f s", g.net.Elapsed(), errS, bound)
	}
}

// fiveSources has three honest servers with different paths and two that agree on the same
// lie, so that the liars form a clique of their own.
func fiveSources(lie time.Duration) []simtest.Source {
	src := func(name string, delay, asym, jitter time.Duration, lie time.Duration) simtest.Source {
		return simtest.Source{
			Name: name, Delay: delay, Asymmetry: asym, Jitter: jitter,
			SpikeProb: 0.05, Spike: 30 * time.Millisecond, Lie: lie,
			Stratum: 1, RootDispersion: 200 * time.Microsecond, Precision: simPrecision,
		}
	}
	return []simtest.Source{
		src("near", 3*time.Millisecond, 600*time.Microsecond, 300*time.Microsecond, 0),
		src("liar-a", 5*time.Millisecond, 0, 200*time.Microsecond, lie),
		src("mid", 12*time.Millisecond, -800*time.Microsecond, time.Millisecond, 0),
		src("far", 40*time.Millisecond, 400*time.Microsecond, 2*time.Millisecond, 0),
		src("liar-b", 8*time.Millisecond, 0, 500*time.Microsecond, lie+300*time.Microsecond),
	}
}

var simStart = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

// TestSimulationConvergesIgnoringLiars runs five sources, two of them lying by seconds in
// agreement, for three hours of simulated time, then lets all five die. Every second it
// checks that the liars are never selected, that the served error stays within the served
// root distance, and after convergence within 1 ms of true time; then that the clock holds
// over with growing dispersion and finally reports itself unsynchronised.
func TestSimulationConvergesIgnoringLiars(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lie   time.Duration
		sysOf time.Duration
		freq  float64
	}{
		{"liars-ahead-step", 2 * time.Second, 300 * time.Millisecond, 25e-6},
		{"liars-behind-slew", -3 * time.Second, -60 * time.Millisecond, -40e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			net := simtest.New(seed, simStart, tc.sysOf, tc.freq, fiveSources(tc.lie))
			opts := upstream.ClockOptions{BuildDate: simStart.AddDate(0, -6, 0)}
			g := newGateway(t, net, opts, []int{1, 4})
			maxErr := runSynchronised(g, 3*time.Hour, 30*time.Minute)
			t.Logf("first sync after %v, max |served − true| after 30 min: %.1f µs", g.firstSync, maxErr*1e6)
			runHoldover(g, opts)
		})
	}
}

// runSynchronised runs the gateway for d and returns the largest served error seen after
// settle.
func runSynchronised(g *gateway, d, settle time.Duration) float64 {
	t := g.t
	maxErr, syncErr := 0.0, 0.0
	for g.net.Elapsed() < d {
		before := g.clock.Now(g.net.Sys())
		g.tick()
		st := g.clock.Status(g.net.Sys())
		errS := g.servedError()
		g.checkHonest(st, errS)
		if g.firstSync < 0 {
			continue
		}
		if g.net.Elapsed() == g.firstSync {
			syncErr = math.Abs(errS)
			continue
		}
		if !st.Synchronised {
			t.Fatalf("at %v: lost synchronisation: %v", g.net.Elapsed(), st.Reason)
		}
		// Served time never jumps after the first synchronisation: one second of system
		// time is one second of served time within the frequency and slew limits.
		if step := g.clock.Now(g.net.Sys()).Sub(before) - time.Second; step.Abs() > 2*time.Millisecond {
			t.Fatalf("at %v: served time moved by %v extra in one second", g.net.Elapsed(), step)
		}
		// Never drifting off towards the liars, seconds away: once synchronised, the error
		// stays within what it was at the first synchronisation (a slew, or a step's
		// residue) plus the few milliseconds the clock drifts before its frequency is known.
		if math.Abs(errS) > max(syncErr, 0.001)+0.010 {
			t.Fatalf("at %v: served error %.6f s, %.6f s at first sync", g.net.Elapsed(), errS, syncErr)
		}
		if g.net.Elapsed() >= settle {
			maxErr = max(maxErr, math.Abs(errS))
			if math.Abs(errS) > 0.001 {
				t.Fatalf("at %v: served error %.6f s after settling", g.net.Elapsed(), errS)
			}
		}
	}
	if g.firstSync < 0 {
		t.Fatal("never synchronised")
	}
	return maxErr
}

// runHoldover kills every source and follows the clock through holdover into
// unsynchronised.
func runHoldover(g *gateway, opts upstream.ClockOptions) {
	t := g.t
	for i := range g.net.Sources {
		g.net.Sources[i].Down = true
	}
	death := g.net.Elapsed()
	limit := upstream.DefaultHoldoverLimit
	lastDisp, sawHoldover := time.Duration(0), false
	for g.net.Elapsed() < death+limit+10*time.Minute {
		g.tick()
		st := g.clock.Status(g.net.Sys())
		g.checkHonest(st, g.servedError())
		sawHoldover = sawHoldover || st.Holdover
		if st.Synchronised && g.net.Elapsed()%time.Minute == 0 {
			if st.RootDispersion <= lastDisp {
				t.Fatalf("at %v: root dispersion %v did not grow from %v", g.net.Elapsed(), st.RootDispersion, lastDisp)
			}
			lastDisp = st.RootDispersion
		}
		if g.net.Elapsed() < death+limit-5*time.Minute && !st.Synchronised {
			t.Fatalf("at %v: unsynchronised %v after death, before the holdover limit: %v",
				g.net.Elapsed(), g.net.Elapsed()-death, st.Reason)
		}
	}
	st := g.clock.Status(g.net.Sys())
	if st.Synchronised || st.Leap != upstream.LeapUnsynch || st.Stratum != upstream.MaxStratum ||
		st.Reason.Kind != upstream.ReasonHoldover {
		t.Fatalf("after the holdover limit: %+v", st)
	}
	if !sawHoldover {
		t.Fatal("never reported holdover")
	}
	t.Logf("holdover: last root dispersion %v; final reason %q; error %.3f ms",
		lastDisp, st.Reason, g.servedError()*1e3)
}

// TestSimulationDisciplinesSystemClock runs the same world with the fake kernel: the
// served clock must behave as without it, and the system clock must follow it.
func TestSimulationDisciplinesSystemClock(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	net := simtest.New(seed, simStart, 400*time.Millisecond, 30e-6, fiveSources(2*time.Second))
	kernel := net.Kernel()
	g := newGateway(t, net, upstream.ClockOptions{Discipliner: kernel}, []int{1, 4})
	maxErr := runSynchronised(g, 2*time.Hour, 30*time.Minute)
	sysErr := net.Sys().Sub(net.True())
	t.Logf("served max error %.1f µs; system clock error %v; %d adjusts", maxErr*1e6, sysErr, len(kernel.Adjusts))
	if len(kernel.Steps) != 1 || (kernel.Steps[0]+400*time.Millisecond).Abs() > 5*time.Millisecond {
		t.Fatalf("want one start-up step of about −400 ms, got %v", kernel.Steps)
	}
	if sysErr.Abs() > time.Millisecond {
		t.Fatalf("system clock is %v from true time", sysErr)
	}
	for _, a := range kernel.Adjusts {
		if a.Rate != upstream.DefaultMaxSlew || math.Abs(a.Freq) > upstream.DefaultMaxFreq {
			t.Fatalf("adjustment out of bounds: %+v", a)
		}
	}
	if got := kernel.Adjusts[len(kernel.Adjusts)-1].Freq; math.Abs(got+30e-6) > 3e-6 {
		t.Fatalf("kernel frequency %.2f ppm, want about −30", got*1e6)
	}
}
