package engine

import (
	"strconv"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
	"timegate/leap"
	"timegate/ntp"
	"timegate/upstream"
)

// LeapOptions configure leap seconds (chrony's leapsectz / leapfile,
// leapsecmode and smoothtime … leaponly).
type LeapOptions struct {
	// Table returns the current leap-second table, nil for none; it is read
	// at every publish, so a reloaded table applies at once.
	Table func() *leap.Table
	Mode  leap.Mode
	// Smooth, with PublishSmooth, publishes a second served state in which
	// leap seconds are smoothed out (for the smoothing port only).
	Smooth        *leap.Smooth
	PublishSmooth func(*ntp.ServedState)
}

// refIDSmooth is chrony's NTP_REFID_SMOOTH (127.127.1.255), served while the
// smoothed time differs from true time.
const refIDSmooth = 0x7f7f01ff

// leapPlan is the leap second being handled, from its announcement on the
// last day of the month to the end of its ramps. Times are served times in
// the timescale before the leap ("pre").
type leapPlan struct {
	due      leap.Due
	shifted  bool      // the soft clock and the samples have taken the leap
	ends     time.Time // when the plan is dropped: every ramp done
	lastWarn time.Time // the day an overruled vote was last logged
}

func (p *leapPlan) active() bool { return p.due.Sec != 0 }

// pre is the served time at sys in the timescale before the leap.
func (r *runner) pre(sys time.Time) time.Time {
	t := r.clock.Now(sys)
	if r.leap.shifted {
		t = t.Add(time.Duration(r.leap.due.Sec) * time.Second)
	}
	return t
}

// leapVote turns the majority's leap indicator into +1, −1 or 0.
func leapVote(st *upstream.Status) int {
	switch {
	case !st.Synchronised:
		return 0
	case st.Leap == upstream.LeapInsert:
		return 1
	case st.Leap == upstream.LeapDelete:
		return -1
	}
	return 0
}

// leapTick runs at every publish before the law is read: it starts a plan on
// the day of a leap, takes the leap (shifts the soft clock and the samples)
// once its time has come, and drops the plan when every ramp is done.
func (r *runner) leapTick(sys time.Time, st *upstream.Status) {
	now := r.pre(sys)
	p := &r.leap
	if p.active() && !now.Before(p.ends) {
		*p = leapPlan{lastWarn: p.lastWarn}
	}
	if p.active() && !p.due.FromTable && now.Before(p.due.At.Add(-leap.Close)) {
		// A leap the vote announced is withdrawn when the vote is, up to
		// leap.Close before it (chrony re-decides at every update and
		// stops changing its mind near the leap, REF_IsLeapSecondClose).
		if d := leap.Decide(now, r.table(), leapVote(st)); d.Sec != p.due.Sec {
			r.log.Warn("leap second withdrawn: the upstream vote changed", zap.Int("second", p.due.Sec))
			*p = leapPlan{lastWarn: p.lastWarn}
		}
	}
	if p.active() {
		if !p.shifted && p.due.Sec != 0 && r.opts.Leap.Mode != leap.ModeIgnore && !now.Before(p.due.At) {
			r.takeLeap(sys)
		}
		return
	}
	if !st.Synchronised && r.opts.Fallback == nil {
		return
	}
	d := leap.Decide(now, r.table(), leapVote(st))
	if d.Overruled && now.Truncate(24*time.Hour) != p.lastWarn {
		p.lastWarn = now.Truncate(24 * time.Hour)
		r.log.Warn("upstream leap vote overruled by the leap-second table", zap.Int("vote_li", int(st.Leap)),
			zap.Int("table", d.Sec))
		r.audit(audit.Event{Type: audit.TypeLeapSecond, Outcome: audit.OutcomeRejected,
			Details: map[string]string{"vote_li": strconv.Itoa(int(st.Leap)), "table": strconv.Itoa(d.Sec)}})
	}
	if d.Sec == 0 {
		return
	}
	p.due = d
	p.ends = d.At.Add(r.leapLength() + time.Second)
	r.log.Info("leap second announced", zap.Int("second", d.Sec), zap.Time("at", d.At),
		zap.Bool("from_table", d.FromTable), zap.String("mode", modeName(r.opts.Leap.Mode)))
}

// table is the current leap-second table, nil for none.
func (r *runner) table() *leap.Table {
	if r.opts.Leap.Table == nil {
		return nil
	}
	return r.opts.Leap.Table()
}

// leapLength is how long after the leap its plan must last: the LI 3 window,
// the samples dropped near it, the slew, the smoothing.
func (r *runner) leapLength() time.Duration {
	n := max(leap.InProgress, leap.Close) // samples near the leap are dropped while the plan lasts
	if r.opts.Leap.Mode == leap.ModeSlew {
		n = max(n, (&leap.Ramp{Rate: leap.SlewRate}).Length())
	}
	if r.opts.Leap.Smooth != nil {
		n = max(n, (&leap.Ramp{Smooth: r.opts.Leap.Smooth}).Length())
	}
	return n
}

// takeLeap moves the soft clock and every stored sample by the leap: UTC
// itself moved. Served time does not move here: the published state already
// ramps it from the leap's exact second, and LeapBase now holds the second.
func (r *runner) takeLeap(sys time.Time) {
	d := -time.Duration(r.leap.due.Sec) * time.Second
	err := r.clock.ShiftLeap(sys, d)
	for _, a := range r.assocs {
		if a.src != nil {
			a.src.ShiftSamples(d)
		}
	}
	r.leap.shifted = true
	outcome := audit.OutcomeOK
	if err != nil {
		outcome = audit.OutcomeFailed
		r.log.Error("system clock not stepped for the leap second", zap.Error(err))
	}
	r.log.Warn("served clock takes the leap second", zap.Int("second", r.leap.due.Sec),
		zap.String("mode", modeName(r.opts.Leap.Mode)))
	r.audit(audit.Event{Type: audit.TypeLeapSecond, Outcome: outcome,
		Details: map[string]string{"second": strconv.Itoa(r.leap.due.Sec), "at": r.leap.due.At.Format(time.RFC3339),
			"mode": modeName(r.opts.Leap.Mode), "from_table": strconv.FormatBool(r.leap.due.FromTable)}})
}

// leapClose reports whether a sample received at sys is within leap.Close of
// the leap: its offset may be off by the second, so it is not used.
func (r *runner) leapClose(sys time.Time) bool {
	if r.leap.due.Sec == 0 {
		return false
	}
	d := r.pre(sys).Sub(r.leap.due.At)
	return d > -leap.Close && d < leap.Close
}

// applyLeap fills the leap fields of a served state and returns when it must
// be published again for the leap (its second, the end of LI 3, the end of
// the plan), or until unchanged.
func (r *runner) applyLeap(sys time.Time, s *ntp.ServedState, until time.Time) time.Time {
	p := &r.leap
	if s.Leap == ntp.LeapUnsync {
		return until
	}
	s.Leap = ntp.LeapNone // a vote alone is served only on its day, through the plan
	if !p.active() {
		return until
	}
	switch p.due.Sec {
	case 1:
		s.Leap = ntp.LeapAdd
	case -1:
		s.Leap = ntp.LeapDelete
	}
	s.LeapAt, s.LeapSec = p.due.At, int8(p.due.Sec)
	switch r.opts.Leap.Mode {
	case leap.ModeSlew:
		s.LeapRamp = leap.Ramp{Rate: leap.SlewRate}
	case leap.ModeIgnore:
		s.LeapSec = 0 // announced, never corrected
	}
	if p.shifted {
		s.LeapBase = time.Duration(p.due.Sec) * time.Second
	}
	now := r.pre(sys)
	for _, t := range []time.Time{p.due.At, p.due.At.Add(leap.InProgress), p.ends} {
		if t.After(now) {
			if at := sys.Add(t.Sub(now)); at.Before(until) {
				until = at
			}
			break
		}
	}
	return until
}

// smoothed derives the state served on the smoothing port from the true one:
// the same clock, but a leap is smoothed out over hours and never announced,
// so its clients never see it (chrony suppresses the leap when smoothing).
func (r *runner) smoothed(sys time.Time, s *ntp.ServedState) *ntp.ServedState {
	sm := *s
	p := &r.leap
	if !p.active() || r.opts.Leap.Smooth == nil || sm.Leap == ntp.LeapUnsync {
		return &sm
	}
	sm.Leap, sm.LeapQuiet = ntp.LeapNone, true
	sm.LeapSec = int8(p.due.Sec)
	sm.LeapRamp = leap.Ramp{Smooth: r.opts.Leap.Smooth}
	if now := r.pre(sys); !now.Before(p.due.At) && now.Before(p.ends) {
		sm.RefID = refIDSmooth
	}
	return &sm
}

func modeName(m leap.Mode) string {
	switch m {
	case leap.ModeSlew:
		return "slew"
	case leap.ModeIgnore:
		return "ignore"
	}
	return "step"
}
