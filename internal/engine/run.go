package engine

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"timegate/nts"
	"timegate/upstream"
)

// Events posted to the loop by timers, socket readers, name lookups and NTS-KE sessions.
type (
	// timerTick: the runner's timer fired (a poll is due, or a request's wait is over).
	timerTick struct{}
	// repliesReady: a request socket has something to read (reqsock).
	repliesReady struct{}
	replyEvent   struct {
		a        *assoc
		req      uint64
		pkt      []byte
		sent, rx time.Time // system clock
		kernelTx bool      // sent is the kernel's transmit timestamp
		kernelRx bool      // rx is the kernel's receive timestamp
		done     chan<- bool
	}
	keEvent struct {
		a    *assoc
		res  *nts.KEResult
		addr netip.AddrPort
		err  error
	}
	resolvedEvent struct {
		a     *assoc
		addrs []netip.Addr
		err   error
	}
	republish struct{ gen uint64 }
)

// runner is the state of one Run: everything here is touched only by the loop goroutine,
// except events, ctx and wg.
type runner struct {
	*Engine
	ctx    context.Context
	events chan any
	wg     sync.WaitGroup
	reqSeq uint64
	res    upstream.Result // the latest mitigation round
	cands  []*assoc        // whose candidates res indexes
	lawGen uint64
	law    *time.Timer
	// refused is the kind of the last refused estimate (upstream.ErrPanic,
	// ...), nil after an accepted one: a refusal is logged and audited when
	// it starts, not on every reply of a source that keeps lying.
	refused error
	// falsetickers are the sources the last round rejected, so that only a
	// change is an audit record.
	falsetickers map[string]bool
	logs         logFiles  // chrony's log files (logdir, log)
	leap         leapPlan  // the leap second being handled
	held         heldBound // the last synchronised root distance, for `local`
	// spacing keeps the sources' polls apart (upstream.PollSpacing);
	// due is scratch for the polls still to come.
	spacing upstream.PollSpacing
	due     []time.Time
	// timer is the loop's one timer, set for the earliest poll or request expiry
	// (timerAt; zero when stopped): its expiry wakes the loop itself, where a timer per
	// source (time.AfterFunc) ran a goroutine of its own first.
	timer   *time.Timer
	timerAt time.Time
	raw     rawRequests
}

// Run polls the sources and publishes the served state until ctx ends. It returns nil
// then: no upstream failure stops the gateway, which serves holdover, then
// unsynchronised or local time.
func (e *Engine) Run(ctx context.Context) error {
	// The loop has a thread of its own: parked, it sleeps in the kernel at once
	// instead of first looking for other goroutines to run, so a request's send is
	// followed sooner by the CPU falling idle, for whatever answers it (a co-located
	// upstream: sample delay p90 to one 22-32 us -> 9-15, BENCHMARKS.md "One wake per
	// poll"). It costs a thread switch per event, a few dozen a second.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx, cancel := context.WithCancel(ctx)
	r := &runner{Engine: e, ctx: ctx, events: make(chan any, 64), logs: newLogFiles(e.opts.LogDir, e.opts.Logs)}
	defer r.logs.close()
	e.loop.Store(r)
	defer e.loop.Store(nil)
	defer r.wg.Wait()
	defer cancel()
	r.timer = time.NewTimer(time.Hour)
	r.timer.Stop()
	r.openRaw()
	r.publish(e.now())
	for _, a := range e.assocs {
		r.start(a)
	}
	for {
		r.rearm()
		select {
		case <-ctx.Done():
			r.stopTimers()
			r.closeRaw()
			r.saveDrift(e.now(), true)
			r.saveDumps()
			return nil
		case ev := <-r.events:
			r.handle(ev)
		case <-r.timer.C:
			r.timerAt = time.Time{}
			r.handle(timerTick{})
		}
	}
}

// post hands an event to the loop unless the run is over.
func (r *runner) post(ev any) bool {
	select {
	case r.events <- ev:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// goTrack runs f in a goroutine that Run waits for.
func (r *runner) goTrack(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

func (r *runner) handle(ev any) {
	sys := r.now()
	local := r.clock.Local(sys)
	if removedAssoc(ev) {
		return
	}
	switch ev := ev.(type) {
	case reconfigureEvent:
		ev.reply <- r.reconfigure(ev)
	case timerTick:
		r.expireRequests(sys)
		for _, a := range r.assocs {
			if a.src != nil && !a.due.IsZero() && !a.due.After(sys) {
				a.due = time.Time{}
				r.apply(a, a.src.HandleTimer(local))
			}
		}
	case replyEvent:
		fin, acts := r.reply(ev.a, ev.req, ev.pkt, ev.sent, ev.rx, ev.kernelTx, ev.kernelRx)
		ev.done <- fin
		r.apply(ev.a, acts)
	case repliesReady:
		r.readReplies()
	case keEvent:
		r.keyed(ev, local)
	case resolvedEvent:
		r.resolved(ev)
	case sourcesQuery:
		ev.reply <- r.reportSources(sys)
		return
	case republish:
		if ev.gen == r.lawGen {
			r.publish(sys)
		}
		return
	}
	r.round(r.now())
}

// reply hands a datagram that answers request req of a to its source; fin reports that
// the request wants no more (its socket is closed), acts what the source asks next.
func (r *runner) reply(a *assoc, req uint64, pkt []byte, sent, rx time.Time, kernelTx, kernelRx bool) (fin bool, acts []upstream.Action) {
	if a.reqID != req || a.src == nil {
		return true, nil // superseded by a newer request
	}
	if r.leapClose(rx) {
		// Measured across the leap: off by the second, or by an
		// upstream's smear. The source sees a lost reply.
		return true, nil
	}
	before := a.src.Stats().Accepted
	acts = a.src.HandleResponse(pkt, r.clock.Local(sent), r.clock.Local(rx))
	if a.src.Stats().Accepted != before {
		a.rxAt = rx
		base := r.servedBase(rx)
		r.logMeasurement(a, pkt, kernelTx, kernelRx, base)
		r.logStatistics(a, base)
	}
	return !a.src.Awaiting(), acts
}

// apply carries out a source's actions.
func (r *runner) apply(a *assoc, acts []upstream.Action) {
	for _, act := range acts {
		switch act := act.(type) {
		case upstream.Send:
			r.spacing.Polled(r.now())
			r.reqSeq++
			a.reqID = r.reqSeq
			if r.raw.set != nil {
				r.sendRaw(a, act.Packet, act.Timeout)
			} else {
				r.request(a, a.reqID, act.Packet, act.Timeout)
			}
		case upstream.WakeAfter:
			r.wake(a, act.D)
		case upstream.Rekey:
			r.rekey(a)
		case upstream.Demobilize:
			a.stopTimer()
			r.closeRequest(a)
			r.log.Warn("source stopped", zap.String("source", a.String()), zap.String("why", act.Reason))
			r.auditSourceDown(a.String(), "poll", act.Reason)
		}
	}
}

// wake sets the association's next poll for d from now, or a little later:
// upstream.PollSpacing keeps it apart from the other sources' polls.
func (r *runner) wake(a *assoc, d time.Duration) {
	a.stopTimer()
	r.due = r.due[:0]
	for _, b := range r.assocs {
		if b != a && !b.due.IsZero() {
			r.due = append(r.due, b.due)
		}
	}
	now := r.now()
	a.due = r.spacing.Place(now, d, a.src.Poll(), upstream.RandomFraction(r.opts.Rand), r.due)
}

// rearm sets the loop's timer for the earliest poll due or request to give up on,
// unless it is set for that already.
func (r *runner) rearm() {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, a := range r.assocs {
		earlier(a.due)
		if a.out.open {
			earlier(a.out.until)
		}
	}
	if next.Equal(r.timerAt) {
		return
	}
	r.timerAt = next
	if next.IsZero() {
		r.timer.Stop()
		return
	}
	r.timer.Reset(next.Sub(r.now()))
}

func (r *runner) stopTimers() {
	for _, a := range r.assocs {
		a.stopTimer()
	}
	r.timer.Stop()
	if r.law != nil {
		r.law.Stop()
	}
}

// round is one selection round over every association's candidate (RFC 5905 §11.2),
// fed to the soft clock, whose state is then published.
func (r *runner) round(sys time.Time) {
	local := r.clock.Local(sys)
	var cands []upstream.Candidate
	var authed []bool
	r.cands = r.cands[:0]
	for _, a := range r.assocs {
		if a.src == nil {
			continue
		}
		if c, ok := a.src.Candidate(); ok {
			cands = append(cands, c)
			authed = append(authed, a.src.Authenticated())
			r.cands = append(r.cands, a)
		}
	}
	cands, authed, r.cands, _ = r.orphanSplit(cands, authed, r.cands)
	r.sel.Require = slices.ContainsFunc(r.assocs, func(a *assoc) bool { return a.spec.Require && !a.removed })
	before := r.clock.Status(sys)
	r.res = upstream.MitigateAuth(local, cands, authed, r.mode, before.Frequency, r.sel)
	r.auditFalsetickers()
	r.auditSourceChanges()
	if !r.res.OK() {
		r.clock.Lose(r.res.Reason)
	} else {
		r.sel.SystemPeer = r.res.Estimate.PeerID
		r.logRefusal(r.clock.Update(sys, r.res.Estimate))
		r.saveDrift(sys, false)
		if after := r.clock.Status(sys); !after.RefTime.Equal(before.RefTime) {
			r.logTracking(sys, &before, &after) // a fresh estimate, not a repeat
		}
	}
	skew := r.clock.SampleSkew(sys)
	for _, a := range r.assocs {
		if a.src != nil {
			a.src.SetSkew(skew)
		}
	}
	r.publish(sys)
}

// logRefusal logs a refused estimate at Warn, and puts it on the audit
// trail, when its kind differs from the previous one's, else logs it at
// Debug: a hostile upstream polled every 1/16 s must not write 16 warnings
// and 16 audit records a second (issue 11).
func (r *runner) logRefusal(err error) {
	if err == nil {
		r.refused = nil
		return
	}
	kind := err
	for _, k := range []error{upstream.ErrPanic, upstream.ErrLoneStep, upstream.ErrBeforeBuild, upstream.ErrDiscipline} {
		if errors.Is(err, k) {
			kind = k
		}
	}
	if kind == r.refused {
		r.log.Debug("estimate refused", zap.Error(err))
		return
	}
	r.refused = kind
	r.log.Warn("estimate refused", zap.Error(err))
	r.auditRefused(err)
}

// removedAssoc reports whether ev belongs to an association a reload removed (its reply
// socket is then told to close).
func removedAssoc(ev any) bool {
	switch ev := ev.(type) {
	case replyEvent:
		if ev.a.removed {
			ev.done <- true
		}
		return ev.a.removed
	case keEvent:
		return ev.a.removed
	case resolvedEvent:
		return ev.a.removed
	}
	return false
}
