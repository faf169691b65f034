package engine

import (
	"time"

	"go.uber.org/zap"

	"timegate/ntp"
	"timegate/upstream"
)

// maxRepublish is the longest a published state goes without a refresh, so that a
// holdover limit passing is served within it even when no source speaks (and the root
// dispersion, which grows with the age of the estimate, stays fresh).
const maxRepublish = time.Minute

// law returns the served clock as ntp.ServedState expresses it — served time = sys +
// offset + freq·(sys − base) — as the soft clock hands it out, exact from sys until
// `until`, when a slew in progress ends and the rate changes, or maxRepublish from now.
func law(c *upstream.SoftClock, sys time.Time) (offset time.Duration, freq float64, base, until time.Time) {
	l := c.Law(sys)
	until = sys.Add(maxRepublish)
	if !l.Until.IsZero() && l.Until.Before(until) {
		until = l.Until
	}
	return l.Offset, l.Freq, l.Base, until
}

// served builds the state the NTP server publishes at sys: the soft clock's when it is
// synchronised, else the fallback (`local stratum N`) or unsynchronised — on the soft
// clock's law either way, so that served time never jumps when synchronisation comes or
// goes.
func (r *runner) served(sys time.Time, st *upstream.Status) (*ntp.ServedState, time.Time) {
	off, freq, base, until := law(r.clock, sys)
	var s ntp.ServedState
	switch {
	case st.Synchronised && !r.localTakesOver(st):
		s = ntp.ServedState{
			Leap: ntp.Leap(st.Leap), Stratum: st.Stratum, RefID: st.RefID,
			RootDelay: st.RootDelay, RootDispersion: st.RootDispersion, RefTime: st.RefTime,
		}
		if limit := r.holdoverLimit(); limit > st.Age {
			until = minTime(until, sys.Add(limit-st.Age))
		}
		r.held = heldBound{at: sys, dist: st.RootDelay/2 + st.RootDispersion, rate: upstream.PHI + st.Skew}
	case r.opts.Fallback != nil:
		s = *r.opts.Fallback
		s.RefTime = sys.Add(off)
		if !r.held.at.IsZero() {
			// Once synchronised, the local clock is only as good as the
			// holdover it continues: its bound keeps growing, never reset.
			grown := r.held.dist + time.Duration(r.held.rate*float64(sys.Sub(r.held.at)))
			s.RootDelay, s.RootDispersion = 0, min(max(grown, 0), upstream.MaxDisp)
		}
	default:
		s = *ntp.Unsynchronised(r.opts.Precision)
		// The reason rides in the stratum-16 reference ID, so clients see why.
		s.RefID = st.Reason.Kind.RefID()
	}
	s.Precision = r.opts.Precision
	s.Offset, s.Freq, s.Base = off, freq, base
	return &s, until
}

// heldBound is the root distance last served as synchronised, when, and
// the rate it grows at (PHI plus the frequency's skew), so that the local
// clock that takes over serves an error bound that continues it.
type heldBound struct {
	at   time.Time
	dist time.Duration
	rate float64
}

// localTakesOver reports whether `local … distance D` serves the local
// clock although the soft clock still holds over: its root distance has
// grown past D (chrony's local distance, default 1 s).
func (r *runner) localTakesOver(st *upstream.Status) bool {
	return r.opts.Fallback != nil && r.opts.LocalDistance > 0 && st.RootDelay/2+st.RootDispersion > r.opts.LocalDistance
}

// holdoverLimit is how long the clock serves after its last estimate; 0
// when there is no holdover (then it never expires by age alone).
func (r *runner) holdoverLimit() time.Duration {
	switch {
	case r.opts.Holdover > 0:
		return r.opts.Holdover
	case r.opts.Holdover < 0:
		return 0
	}
	return upstream.DefaultHoldoverLimit
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// states computes what publish hands out at sys: the clock's status, the
// served state, the smoothed one, and until when they are exact.
func (r *runner) states(sys time.Time) (st upstream.Status, s, smooth *ntp.ServedState, until time.Time) {
	st = r.clock.Status(sys)
	r.leapTick(sys, &st)
	s, until = r.served(sys, &st)
	until = r.applyLeap(sys, s, until)
	return st, s, r.smoothed(sys, s), until
}

// publish hands the served state to the gateway, logs a selection change, and schedules
// the next refresh for when the published law stops being exact.
func (r *runner) publish(sys time.Time) {
	st, s, smooth, until := r.states(sys)
	r.opts.Publish(s)
	if r.opts.Leap.PublishSmooth != nil {
		r.opts.Leap.PublishSmooth(smooth)
	}
	r.summarise(&st)
	r.logChange(&st)
	if r.law != nil {
		r.law.Stop()
	}
	r.lawGen++
	gen := r.lawGen
	r.law = time.AfterFunc(max(until.Sub(sys), time.Millisecond), func() { r.post(republish{gen: gen}) })
}

// shown is what the operator was last told about the selection.
type shown struct {
	synced, holdover bool
	peer             uint64
	reason           upstream.ReasonKind
	valid            bool
}

// logChange writes one Info line whenever the system peer, the synchronisation or the
// reason for not being synchronised changes: until `gatectl status` exists, this is how an
// operator follows the selection.
func (r *runner) logChange(st *upstream.Status) {
	now := shown{synced: st.Synchronised, holdover: st.Holdover, reason: st.Reason.Kind, valid: true}
	if st.Synchronised && !st.Holdover {
		now.peer = r.res.Estimate.PeerID
	}
	if now == r.shown {
		return
	}
	r.shown = now
	switch {
	case st.Synchronised && st.Holdover:
		r.log.Info("holding over: no usable estimate", zap.String("why", st.Reason.String()),
			zap.Duration("since_last_estimate", st.Age), zap.Duration("root_dispersion", st.RootDispersion))
	case st.Synchronised:
		r.log.Info("synchronised", r.selectionFields(st)...)
		r.auditSelection(st)
	case r.opts.Fallback != nil:
		r.log.Info("unsynchronised: serving the local clock", zap.String("why", st.Reason.String()),
			zap.Uint8("stratum", r.opts.Fallback.Stratum))
	default:
		r.log.Info("unsynchronised (leap 3, stratum 16)", zap.String("why", st.Reason.String()))
	}
}

// selectionFields describe a successful selection: the system peer and who agreed.
func (r *runner) selectionFields(st *upstream.Status) []zap.Field {
	names := func(idx []int) []string {
		out := make([]string, 0, len(idx))
		for _, i := range idx {
			out = append(out, r.candName(i))
		}
		return out
	}
	return []zap.Field{
		zap.String("system_peer", r.candName(r.res.Estimate.Peer)),
		zap.Uint8("stratum", st.Stratum),
		zap.Duration("offset", r.res.Estimate.Offset),
		zap.Duration("correction", st.Offset),
		zap.Duration("root_distance", st.RootDelay/2+st.RootDispersion),
		zap.Strings("truechimers", names(r.res.Truechimers)),
		zap.Strings("falsetickers", names(r.res.Falsetickers)),
	}
}

// candName names the i-th candidate of the latest round.
func (r *runner) candName(i int) string {
	if i < 0 || i >= len(r.cands) {
		return "?"
	}
	return r.cands[i].String()
}
