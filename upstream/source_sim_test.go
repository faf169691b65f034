package upstream_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/upstream"
	"timegate/upstream/simtest"
)

// The tests below run the real per-source state machines (keyed with AES-CMAC) against
// the real server path (ntp.Responder) over a simtest network, with a fake clock: every
// packet is built, authenticated, answered and checked as on the wire.

// simWorld is the event loop an edge would run, in simulated time.
type simWorld struct {
	t       *testing.T
	net     *simtest.Net
	clock   *upstream.SoftClock
	opts    upstream.SelectOptions
	srcs    []*simSrc
	liars   []int
	attack  map[int]bool // sources whose every request draws forged answers
	rng     *rand.ChaCha8
	synced  time.Duration // true elapsed time of the first synchronisation, −1 before
	res     upstream.Result
	maxPoll int8
}

type simSrc struct {
	src      *upstream.Source
	peer     *peer
	wake     time.Duration // true elapsed time of the next HandleTimer, −1 for none
	inflight []delivery
}

type delivery struct {
	at       time.Duration // true elapsed time it arrives
	pkt      []byte
	sent, rx time.Time // local
}

func newSimWorld(t *testing.T, seed uint64, net *simtest.Net, liars []int) *simWorld {
	return newPollWorld(t, seed, net, liars, 4, 7, 300*time.Millisecond)
}

// newPollWorld is newSimWorld with the sources' poll range and the stagger of their
// first polls.
func newPollWorld(t *testing.T, seed uint64, net *simtest.Net, liars []int, minPoll, maxPoll int8, stagger time.Duration) *simWorld {
	w := &simWorld{t: t, net: net, clock: upstream.NewSoftClock(upstream.ClockOptions{BuildDate: simStart.AddDate(0, -6, 0)}),
		liars: liars, attack: map[int]bool{}, rng: seededRand(seed ^ 0x5eed), synced: -1, maxPoll: maxPoll}
	for i, s := range net.Sources {
		key := testKey(t, uint32(i+1), w.rng)
		p := newPeer(t, w.rng, key)
		p.state = ntp.ServedState{Stratum: s.Stratum, RootDelay: s.RootDelay, RootDispersion: s.RootDispersion,
			Leap: ntp.Leap(s.Leap), Precision: -20, RefID: 0x47505300}
		src := upstream.NewSource(upstream.SourceConfig{
			ID: uint64(i + 1), RefID: 0xc0000201 + uint32(i), MinPoll: minPoll, MaxPoll: w.maxPoll, IBurst: true,
			Auth: upstream.KeyAuth{ID: uint32(i + 1), Key: key}, Precision: simPrecision, Rand: w.rng,
		})
		// Stagger the start so that the sources do not poll in lockstep.
		w.srcs = append(w.srcs, &simSrc{src: src, peer: p, wake: time.Duration(i) * stagger})
	}
	return w
}

func (w *simWorld) local() time.Time { return w.clock.Local(w.net.Sys()) }

// runUntil processes events in time order until true elapsed time end, calling check at
// every whole second.
func (w *simWorld) runUntil(end time.Duration, check func()) {
	for w.net.Elapsed() < end {
		next := (w.net.Elapsed()/time.Second + 1) * time.Second
		for _, s := range w.srcs {
			if s.wake >= 0 && s.wake < next {
				next = s.wake
			}
			for _, d := range s.inflight {
				next = min(next, d.at)
			}
		}
		w.net.Advance(next - w.net.Elapsed())
		if w.events() {
			w.mitigate()
		}
		if w.net.Elapsed()%time.Second == 0 {
			check()
		}
	}
}

// events delivers what is due now and fires due timers; it reports whether anything
// happened.
func (w *simWorld) events() bool {
	now, any := w.net.Elapsed(), false
	for i, s := range w.srcs {
		for len(s.inflight) > 0 && s.inflight[0].at <= now {
			d := s.inflight[0]
			s.inflight = s.inflight[1:]
			w.apply(i, s.src.HandleResponse(d.pkt, d.sent, d.rx))
			any = true
		}
		if s.wake >= 0 && s.wake <= now {
			s.wake = -1
			w.apply(i, s.src.HandleTimer(w.local()))
			any = true
		}
	}
	return any
}

func (w *simWorld) apply(i int, acts []upstream.Action) {
	s := w.srcs[i]
	for _, a := range acts {
		switch a := a.(type) {
		case upstream.Send:
			w.send(i, a.Packet)
		case upstream.WakeAfter:
			s.wake = w.net.Elapsed() + a.D
		default:
			w.t.Fatalf("source %d: unexpected action %#v", i, a)
		}
	}
}

// send carries a request over the simulated path and queues the answer, preceded by the
// forgeries of an on-path attacker without the key when the source is under attack.
func (w *simWorld) send(i int, req []byte) {
	s := w.srcs[i]
	ex, ok := w.net.Exchange(i)
	if !ok {
		return
	}
	sent, rx := w.clock.Local(ex.T1), w.clock.Local(ex.T4)
	at := w.net.Elapsed() + ex.T4.Sub(ex.T1)
	reply := s.peer.answer(req, ex.T2, ex.T3)
	if w.attack[i] {
		reqH, _ := ntp.DecodeHeader(req)
		early := w.net.Elapsed() + ex.T4.Sub(ex.T1)/2
		for _, forged := range w.forged(&reqH, reply) {
			s.inflight = append(s.inflight, delivery{at: early, pkt: forged, sent: sent, rx: sent.Add(ex.T4.Sub(ex.T1) / 2)})
		}
	}
	s.inflight = append(s.inflight, delivery{at: at, pkt: reply, sent: sent, rx: rx})
	if w.attack[i] {
		s.inflight = append(s.inflight, delivery{at: at + time.Millisecond, pkt: reply, sent: sent, rx: rx.Add(time.Millisecond)})
	}
}

// forged returns what an attacker who sees the request but lacks the key can send: kisses
// echoing the right origin, and a reply five seconds off with a bad origin and a copied MAC.
func (w *simWorld) forged(req *ntp.Header, reply []byte) [][]byte {
	var out [][]byte
	for _, code := range []ntp.KissCode{ntp.KissDENY, ntp.KissRATE, ntp.KissRSTR} {
		h := ntp.KissHeader(req, code)
		out = append(out, h.Append(nil))
	}
	lie := bytes.Clone(reply)
	h, _ := ntp.DecodeHeader(lie)
	h.Origin ^= 0xfff
	h.Receive, h.Transmit = h.Receive.Add(5*time.Second), h.Transmit.Add(5*time.Second)
	h.Put(lie)
	return append(out, lie)
}

// mitigate is one selection round, as the engine runs it.
func (w *simWorld) mitigate() {
	var cands []upstream.Candidate
	var authed []bool
	var index []int
	for i, s := range w.srcs {
		if c, ok := s.src.Candidate(); ok {
			cands, authed, index = append(cands, c), append(authed, s.src.Authenticated()), append(index, i)
		}
	}
	sys := w.net.Sys()
	for _, s := range w.srcs {
		s.src.SetSkew(w.clock.SampleSkew(sys))
	}
	w.res = upstream.MitigateAuth(w.clock.Local(sys), cands, authed, upstream.AuthRequire, w.clock.Status(sys).Frequency, w.opts)
	if !w.res.OK() {
		w.clock.Lose(w.res.Reason)
		return
	}
	for _, k := range slices.Concat(w.res.Truechimers, w.res.Survivors) {
		if slices.Contains(w.liars, index[k]) {
			w.t.Fatalf("at %v: liar %d selected: %+v", w.net.Elapsed(), index[k], w.res.Selection)
		}
	}
	w.opts.SystemPeer = w.res.Estimate.PeerID
	if err := w.clock.Update(sys, w.res.Estimate); err != nil {
		w.t.Fatalf("at %v: update: %v", w.net.Elapsed(), err)
	}
	if w.synced < 0 {
		w.synced = w.net.Elapsed()
	}
	for _, s := range w.srcs {
		s.src.SetSkew(w.clock.SampleSkew(sys))
	}
}

// servedError is served time minus true time, in seconds.
func (w *simWorld) servedError() float64 {
	return w.clock.Now(w.net.Sys()).Sub(w.net.True()).Seconds()
}

// TestSourcesConvergeIgnoringLiars: five keyed sources with different delays, jitter and
// asymmetry, two of them lying by seconds in agreement, one honest source under constant
// attack by forged kisses, bad-origin replies and duplicates. The served time converges
// to within 1 ms of the truth, never follows the liars, the attacked source is neither
// stopped nor slowed; then all five die: holdover with growing dispersion, then
// unsynchronised.
func TestSourcesConvergeIgnoringLiars(t *testing.T) {
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
			seed := newSeed(t)
			w := newSimWorld(t, seed, simtest.New(seed, simStart, tc.sysOf, tc.freq, fiveSources(tc.lie)), []int{1, 4})
			w.attack[0] = true
			maxErr := w.runSynced(3*time.Hour, 30*time.Minute)
			st := w.srcs[0].src.Stats()
			t.Logf("first sync after %v; max |served − true| after 30 min %.1f µs; attacked source %+v poll %d",
				w.synced, maxErr*1e6, st, w.srcs[0].src.Poll())
			if st.Kisses != 0 || st.IgnoredKisses == 0 || st.Bogus == 0 || st.Unexpected == 0 || w.srcs[0].src.Stopped() != "" {
				t.Fatalf("attacked source: %+v stopped %q", st, w.srcs[0].src.Stopped())
			}
			if c, ok := w.srcs[0].src.Candidate(); !ok || !slices.Contains(w.res.Truechimers, w.candIndex(c.ID)) {
				t.Fatalf("attacked source is not a truechimer: %+v", w.res.Selection)
			}
			w.runHoldover()
		})
	}
}

func (w *simWorld) candIndex(id uint64) int {
	n := 0
	for _, s := range w.srcs {
		c, ok := s.src.Candidate()
		if ok && c.ID == id {
			return n
		}
		if ok {
			n++
		}
	}
	return -1
}

// runSynced runs for d and returns the largest served error after settle, failing on a
// served error beyond the served root distance, a jump, or drifting off.
func (w *simWorld) runSynced(d, settle time.Duration) float64 {
	t := w.t
	maxErr, syncErr := 0.0, 0.0
	before := w.clock.Now(w.net.Sys())
	w.runUntil(d, func() {
		st := w.clock.Status(w.net.Sys())
		errS := w.servedError()
		checkBound(t, w.net.Elapsed(), st, errS)
		now := w.clock.Now(w.net.Sys())
		step := now.Sub(before) - time.Second
		before = now
		switch {
		case w.synced < 0:
			return
		case w.net.Elapsed() <= w.synced+time.Second:
			syncErr = math.Abs(errS)
			return
		case !st.Synchronised:
			t.Fatalf("at %v: lost synchronisation: %v", w.net.Elapsed(), st.Reason)
		case step.Abs() > 2*time.Millisecond:
			t.Fatalf("at %v: served time moved by %v extra in one second", w.net.Elapsed(), step)
		case math.Abs(errS) > max(syncErr, 0.001)+0.010:
			t.Fatalf("at %v: served error %.6f s, %.6f s at first sync", w.net.Elapsed(), errS, syncErr)
		}
		if w.net.Elapsed() >= settle {
			maxErr = max(maxErr, math.Abs(errS))
			if math.Abs(errS) > 0.001 {
				t.Fatalf("at %v: served error %.6f s after settling", w.net.Elapsed(), errS)
			}
		}
	})
	if w.synced < 0 {
		t.Fatal("never synchronised")
	}
	return maxErr
}

// checkBound fails unless a synchronised clock's root distance bounds its true error.
func checkBound(t *testing.T, at time.Duration, st upstream.Status, errS float64) {
	t.Helper()
	if bound := (st.RootDelay/2 + st.RootDispersion).Seconds(); st.Synchronised && math.Abs(errS) > bound {
		t.Fatalf("at %v: served error %.6f s exceeds root distance %.6f s", at, errS, bound)
	}
}

// runHoldover kills every source and follows the clock through holdover into
// unsynchronised, checking that the sources back off instead of hammering dead servers.
func (w *simWorld) runHoldover() {
	t := w.t
	for i := range w.net.Sources {
		w.net.Sources[i].Down = true
	}
	death := w.net.Elapsed()
	limit := upstream.DefaultHoldoverLimit
	lastDisp, lastAge, sawHoldover := time.Duration(0), time.Duration(0), false
	// The clock filter may keep using a sample up to eight polls old, so the last fresh
	// estimate may come that long before or after the death; the holdover limit counts
	// from it.
	gone := 8 * upstream.PollInterval(w.maxPoll)
	w.runUntil(death+gone+limit+5*time.Minute, func() {
		st := w.clock.Status(w.net.Sys())
		checkBound(t, w.net.Elapsed(), st, w.servedError())
		sawHoldover = sawHoldover || st.Holdover
		if st.Synchronised && w.net.Elapsed()%time.Minute == 0 {
			if st.Age < lastAge { // a fresh estimate from samples taken before the death
				lastDisp = 0
			}
			lastAge = st.Age
			if st.RootDispersion <= lastDisp {
				t.Fatalf("at %v: root dispersion %v did not grow from %v", w.net.Elapsed(), st.RootDispersion, lastDisp)
			}
			lastDisp = st.RootDispersion
		}
		if w.net.Elapsed() < death+limit-gone && !st.Synchronised {
			t.Fatalf("at %v: unsynchronised %v after death, before the holdover limit: %v",
				w.net.Elapsed(), w.net.Elapsed()-death, st.Reason)
		}
	})
	st := w.clock.Status(w.net.Sys())
	if st.Synchronised || st.Leap != upstream.LeapUnsynch || st.Stratum != upstream.MaxStratum ||
		st.Reason.Kind != upstream.ReasonHoldover || !sawHoldover {
		t.Fatalf("after the holdover limit: %+v (saw holdover %v)", st, sawHoldover)
	}
	for i, s := range w.srcs {
		if s.src.Reach() != 0 || s.src.Poll() != w.maxPoll {
			t.Fatalf("dead source %d: reach %08b poll %d, want 0 and maxpoll", i, s.src.Reach(), s.src.Poll())
		}
	}
	t.Logf("holdover: last root dispersion %v; final reason %q", lastDisp, st.Reason)
}
