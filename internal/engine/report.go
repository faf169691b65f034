package engine

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"timegate/internal/report"
	"timegate/symkey"
	"timegate/upstream"
)

// ErrNotRunning is returned by Sources when Run is not running.
var ErrNotRunning = errors.New("engine: not running")

// sourcesQuery asks the loop for its view of every association.
type sourcesQuery struct{ reply chan<- []report.Source }

// Sources returns one row per association as the loop sees it now (chronyc `sources`,
// `sourcestats` and `authdata` together). It waits for the loop, at most until ctx ends.
func (e *Engine) Sources(ctx context.Context) ([]report.Source, error) {
	r := e.loop.Load()
	if r == nil {
		return nil, ErrNotRunning
	}
	reply := make(chan []report.Source, 1)
	select {
	case r.events <- sourcesQuery{reply: reply}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.ctx.Done():
		return nil, ErrNotRunning
	}
	select {
	case rows := <-reply:
		return rows, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// reportSources builds the rows; it runs on the loop goroutine.
func (r *runner) reportSources(sys time.Time) []report.Source {
	local := r.clock.Local(sys)
	rows := make([]report.Source, 0, len(r.assocs))
	for _, a := range r.assocs {
		rows = append(rows, r.reportSource(a, sys, local))
	}
	return rows
}

func (r *runner) reportSource(a *assoc, sys, local time.Time) report.Source {
	row := report.Source{ID: a.id, Name: a.spec.Host, Auth: "none", SinceRx: -1, SinceKE: -1, Authenticated: a.authenticated()}
	if a.addr.IsValid() {
		row.Address = a.addr.String()
	}
	if a.keIP.IsValid() {
		row.KEAddress = netip.AddrPortFrom(a.keIP, uint16(a.spec.NTSPort)).String()
	}
	switch {
	case a.spec.NTS:
		row.Auth = "nts"
	case a.spec.KeyID != 0:
		row.Auth, row.KeyID = "key", a.spec.KeyID
		if k, ok := a.auth.(upstream.KeyAuth); ok {
			if sk, ok := k.Key.(*symkey.Key); ok {
				row.KeyType = sk.Type().String()
			}
		}
	}
	if !a.keAt.IsZero() {
		row.SinceKE = sys.Sub(a.keAt).Seconds()
	}
	row.KEError = a.keErr
	if !a.rxAt.IsZero() {
		row.SinceRx = sys.Sub(a.rxAt).Seconds()
	}
	if a.src == nil {
		row.State, row.Why = report.SourceResolving, a.resolveErr
		return row
	}
	src := a.src
	st := src.Stats()
	row.Poll, row.Reach = src.Poll(), src.Reach()
	row.Sent, row.Received = st.Sent, st.Accepted
	row.Rejected = st.Bogus + st.BadAuth + st.Unexpected + st.Unusable
	row.Kisses = st.Kisses
	row.XLeave, row.Interleaved, row.Mode = a.spec.XLeave, src.Interleaved(), "basic"
	if row.Interleaved {
		row.Mode = "interleaved"
	}
	if n := src.Cookies(); n >= 0 {
		row.Cookies = n
	}
	if ls := src.LastSample(); !ls.Time.IsZero() {
		row.LastOffset, row.LastDelay = ls.Offset.Seconds(), ls.Delay.Seconds()
	}
	if fs, ok := src.FilterStats(); ok {
		row.Offset, row.Delay = fs.Offset.Seconds(), fs.Delay.Seconds()
		row.Jitter, row.Dispersion, row.Samples = fs.Jitter.Seconds(), fs.Dispersion.Seconds(), fs.Samples
	}
	row.State, row.Why = r.sourceState(a, local)
	if c, ok := src.Candidate(); ok {
		row.Stratum = c.Stratum
		row.RootDistance = c.RootDistance(local).Seconds()
	}
	return row
}

// sourceState says where the association stands in selection, and why.
func (r *runner) sourceState(a *assoc, local time.Time) (string, string) {
	src := a.src
	switch {
	case src.Stopped() != "":
		return report.SourceStopped, src.Stopped()
	case a.spec.NTS && src.KEFailing() > 0 && a.keErr != "":
		return report.SourceKEFailing, a.keErr
	}
	i := slices.Index(r.cands, a)
	if i < 0 {
		switch {
		case src.ServerUnsynchronised():
			return report.SourceNotSelectable, "the server says it is unsynchronised"
		case src.Reach() == 0 && src.Stats().Sent > 0:
			return report.SourceUnreachable, "no valid reply to the last 8 polls"
		}
		return report.SourceInit, "no sample yet"
	}
	res := &r.res
	switch {
	case len(res.Survivors) > 0 && res.Survivors[0] == i && res.OK():
		return report.SourceSelected, "system peer"
	case slices.Contains(res.Survivors, i):
		return report.SourceCombined, "survivor, combined into the estimate"
	case slices.Contains(res.Truechimers, i):
		return report.SourceCandidate, "truechimer, not among the cluster survivors"
	case slices.Contains(res.Falsetickers, i):
		return report.SourceFalseticker, "outside the intersection of the majority"
	case !r.mode.Allows(a.src.Authenticated()):
		return report.SourceUnauth, "not authenticated: authselectmode " + r.mode.String() + " does not select it"
	}
	if c, ok := src.Candidate(); ok && c.RootDistance(local) > r.maxDistance() {
		return report.SourceTooFar, "root distance above maxdistance"
	}
	return report.SourceNotSelectable, "stratum or leap make it unselectable"
}

func (r *runner) maxDistance() time.Duration {
	if r.sel.MaxDistance > 0 {
		return r.sel.MaxDistance
	}
	return upstream.DefaultMaxDistance
}

// Summary is the selection as `gatectl status` words it; the loop refreshes it with every
// published state.
type Summary struct {
	Synchronised, Holdover bool
	// Reason says why the clock is unsynchronised or holding over; empty otherwise.
	Reason string
	// SystemPeer names the system peer while synchronised on fresh estimates.
	SystemPeer  string
	Truechimers int
	Sources     int
	// Age is the time since the last accepted estimate; negative before the first.
	Age time.Duration
	// Drift and Skew are the soft clock's frequency estimate and its uncertainty (s/s),
	// what the drift file keeps (chronyc tracking's Frequency and Skew).
	Drift, Skew float64
	// Estimate is the last combined offset (sources' time minus local time).
	Estimate time.Duration
}

// Summary returns the latest selection summary; the zero Summary before Run starts.
func (e *Engine) Summary() Summary {
	if s := e.summary.Load(); s != nil {
		return *s
	}
	return Summary{Age: -1, Sources: len(e.assocs), Reason: "not started"}
}

func (r *runner) summarise(st *upstream.Status) {
	s := &Summary{Synchronised: st.Synchronised, Holdover: st.Holdover, Sources: len(r.assocs), Age: -1,
		Drift: st.Frequency, Skew: st.Skew}
	if st.Reason.Kind != upstream.ReasonNone {
		s.Reason = st.Reason.String()
	}
	if !st.RefTime.IsZero() {
		s.Age = st.Age
	}
	if st.Synchronised && !st.Holdover && r.res.OK() {
		s.SystemPeer = r.candName(r.res.Estimate.Peer)
		s.Estimate = r.res.Estimate.Offset
		s.Truechimers = len(r.res.Truechimers)
	}
	r.summary.Store(s)
}
