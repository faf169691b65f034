package engine

import (
	"errors"
	"strconv"
	"strings"

	"timegate/audit"
	"timegate/upstream"
)

// The engine's audit events: changes only (a new system peer, a source
// newly voted a falseticker, a source stopped or failing), never one per
// poll, so their rate is bounded by the poll and retry back-off.

func (r *runner) audit(e audit.Event) {
	if r.opts.Audit != nil {
		r.opts.Audit(e)
	}
}

// auditSelection records a new system peer (called when the log line
// "synchronised" is written, i.e. on change).
func (r *runner) auditSelection(st *upstream.Status) {
	r.audit(audit.Event{Type: audit.TypeUpstreamSelected, Outcome: audit.OutcomeOK,
		Subject: audit.Subject{Source: r.candName(r.res.Estimate.Peer)},
		Details: map[string]string{
			"stratum":      strconv.Itoa(int(st.Stratum)),
			"offset":       r.res.Estimate.Offset.String(),
			"truechimers":  strconv.Itoa(len(r.res.Truechimers)),
			"falsetickers": strconv.Itoa(len(r.res.Falsetickers)),
		}})
}

// auditFalsetickers records each source the latest round newly rejected
// as a falseticker.
func (r *runner) auditFalsetickers() {
	now := map[string]bool{}
	for _, i := range r.res.Falsetickers {
		name := r.candName(i)
		now[name] = true
		if !r.falsetickers[name] {
			r.audit(audit.Event{Type: audit.TypeUpstreamFalse, Outcome: audit.OutcomeRejected,
				Subject: audit.Subject{Source: name},
				Details: map[string]string{"truechimers": strconv.Itoa(len(r.res.Truechimers))}})
		}
	}
	r.falsetickers = now
}

// auditRefused records an estimate the soft clock refused: a step beyond
// the panic threshold or to a time before the build.
func (r *runner) auditRefused(err error) {
	typ := audit.TypeClockStepRefused
	if !errors.Is(err, upstream.ErrPanic) && !errors.Is(err, upstream.ErrBeforeBuild) && !errors.Is(err, upstream.ErrLoneStep) {
		typ = audit.TypeUpstreamDown // discipline failure: not a step, still on the record
	}
	r.audit(audit.Event{Type: typ, Outcome: audit.OutcomeRejected, Details: map[string]string{"error": err.Error()}})
}

// auditSourceDown records a source that failed (stage: resolve, nts-ke)
// or was stopped (a DENY or RSTR kiss, recorded as upstream.kod).
func (r *runner) auditSourceDown(source, stage, why string) {
	typ := audit.TypeUpstreamDown
	if strings.Contains(strings.ToLower(why), "kiss") {
		typ = audit.TypeUpstreamKoD
	}
	r.audit(audit.Event{Type: typ, Outcome: audit.OutcomeFailed, Subject: audit.Subject{Source: source},
		Details: map[string]string{"stage": stage, "why": why}})
}

// auditSourceChanges records, once per change, a kiss a running source acted upon (RATE:
// it polls less; NTSN: it redoes NTS-KE — DENY and RSTR stop it and are recorded by
// auditSourceDown) and a source that stopped answering (reach fell to 0).
func (r *runner) auditSourceChanges() {
	for _, a := range r.assocs {
		if a.src == nil {
			continue
		}
		st := a.src.Stats()
		if st.Kisses > a.auditKisses && a.src.Stopped() == "" {
			r.audit(audit.Event{Type: audit.TypeUpstreamKoD, Outcome: audit.OutcomeOK, Subject: audit.Subject{Source: a.String()},
				Details: map[string]string{"kiss": a.src.LastKiss().String(), "poll": strconv.Itoa(int(a.src.Poll()))}})
		}
		a.auditKisses = st.Kisses
		reachable := a.src.Reach() != 0
		if a.auditReachable && !reachable && a.src.Stopped() == "" {
			r.auditSourceDown(a.String(), "poll", "no valid reply to the last 8 polls")
		}
		a.auditReachable = reachable
	}
}
