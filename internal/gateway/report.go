package gateway

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"timegate/interleave"
	"timegate/internal/etcdring"
	"timegate/internal/kelisten"
	"timegate/internal/keystore"
	"timegate/internal/report"
	"timegate/ntp"
	"timegate/upstream"
)

// The gateway is what gatectl and the metrics endpoint read.
var _ report.Reporter = (*Gateway)(nil)

// loaded records the configuration in force: when it was read, and what the
// last load or reload warned about.
type loaded struct {
	at       time.Time
	warnings []string
}

// Status implements report.Reporter.
func (g *Gateway) Status() report.Status {
	now := g.opts.now()
	s := g.state.Load()
	cfg := g.cfg.Load()
	st := report.Status{
		Stratum: s.Stratum,
		RefID:   ntp.RefIDString(s.Stratum, s.RefID),
		RefTime: s.RefTime,
		Leap:    leapWords(s.Leap),
		// The published law's offset at now, not at its base.
		Offset:         s.Serve(now).Sub(now).Seconds(),
		FrequencyPPM:   s.Freq * 1e6,
		RootDelay:      s.RootDelay.Seconds(),
		RootDispersion: s.RootDispersion.Seconds(),
		RootDistance:   (s.RootDelay/2 + s.RootDispersion).Seconds(),
		SinceEstimate:  -1,
		MinSources:     cfg.MinSources,
		Version:        Version(),
		Started:        g.started,
		Uptime:         now.Sub(g.started).Seconds(),
		ConfigFile:     g.opts.ConfigPath,
	}
	if st.ConfigFile == "" {
		st.ConfigFile = "(embedded defaults)"
	}
	if l := g.loaded.Load(); l != nil {
		st.ConfigLoaded, st.Warnings = l.at, l.warnings
	}
	if g.keys != nil && g.keys.fleet != nil {
		// An alarm, not a configuration warning: it comes and goes with etcd.
		if f := g.keys.fleet.Status(); !f.Connected {
			st.Warnings = append(slices.Clip(st.Warnings), fmt.Sprintf(
				"fleet key store unreachable since %s (%s): serving the last good key ring, no rotation until etcd answers",
				f.Since.UTC().Format(time.RFC3339), f.LastError))
		}
	}
	if s.Leap == ntp.LeapUnsync {
		st.ReasonCode = ntp.KissCode(s.RefID).String()
	}
	if lt, ok := g.LeapTableStatus(); ok {
		st.LeapTable, st.LeapTableEntries, st.LeapTableExpires, st.LeapTableExpired = lt.Path, lt.Entries, lt.Expires, lt.Expired
	}
	st.Audit = g.auditStatus()
	g.describeSync(&st, s)
	return st
}

// describeSync fills the state words from the engine's summary, or from the
// served state alone when there are no upstream sources.
func (g *Gateway) describeSync(st *report.Status, s *ntp.ServedState) {
	up := g.upstream.Load()
	if up == nil {
		st.Synchronised = false
		if s.Leap == ntp.LeapUnsync {
			st.State = report.StateUnsynchronised
			st.Reason = "no upstream sources are configured and there is no `local` directive"
		} else {
			st.State = report.StateLocal
			st.Reason = "no upstream sources are configured: serving the local clock (`local stratum " + strconv.Itoa(int(s.Stratum)) + "`)"
		}
		return
	}
	sum := up.Summary()
	st.Synchronised = sum.Synchronised
	st.SystemPeer, st.Truechimers, st.Sources = sum.SystemPeer, sum.Truechimers, sum.Sources
	st.DriftPPM, st.SkewPPM = sum.Drift*1e6, sum.Skew*1e6
	st.EstimateOffset = sum.Estimate.Seconds()
	if sum.Age >= 0 {
		st.SinceEstimate = sum.Age.Seconds()
	}
	st.Reason = sum.Reason
	switch {
	case sum.Synchronised && sum.Holdover:
		st.State = report.StateHoldover
	case sum.Synchronised:
		st.State = report.StateSynchronised
	case s.Leap != ntp.LeapUnsync:
		st.State = report.StateLocal
	default:
		st.State = report.StateUnsynchronised
		if why, ok := upstream.ExplainRefID(s.RefID); ok && st.Reason == "" {
			st.Reason = why
		}
	}
}

// Sources implements report.Reporter.
func (g *Gateway) Sources(ctx context.Context) ([]report.Source, error) {
	up := g.upstream.Load()
	if up == nil {
		return []report.Source{}, nil
	}
	return up.Sources(ctx)
}

// ServerStats implements report.Reporter.
func (g *Gateway) ServerStats() report.ServerStats {
	st := g.stats.Snapshot()
	out := report.ServerStats{NTP: report.NTPStats{
		Received:   st.Received,
		Replied:    st.Replied,
		NTSNAK:     st.NTSNAK,
		Leaked:     st.Leaked,
		SendErrors: st.SendErrors,
		// Counted by the kernel, read from each worker socket now.
		KernelDrops: st.KernelDrops,
		// Interleaved mode (RFC 9769): replies and kernel stamps.
		Interleaved:  st.Interleaved,
		TxStamps:     st.TxStamps,
		TxLeadNS:     int64(st.TxLead),
		LeadProbes:   st.LeadProbes,
		TxLeadLagNS:  int64(st.TxLeadLag),
		TxLeadCostNS: int64(st.TxLeadCost),
		Answered:     map[string]uint64{"none": st.Answered[ntp.AuthNone], "key": st.Answered[ntp.AuthKey], "nts": st.Answered[ntp.AuthNTS]},
		KoD:          map[string]uint64{"RATE": st.KoDRATE, "DENY": st.KoDDENY, "RSTR": st.KoDRSTR},
		Dropped:      map[string]uint64{},
		ByMode:       map[string]uint64{},
	}}
	if r := g.responder.Load(); r != nil {
		if t, ok := r.Interleave.(*interleave.Table); ok {
			out.NTP.Timestamps, out.NTP.TimestampCapacity = t.Len(), t.Capacity()
		}
	}
	for m, n := range st.ByMode {
		out.NTP.ByMode[modeName(m)] = n
	}
	for r := ntp.Reason(0); r < ntp.NumReasons; r++ {
		if r != ntp.ReasonOK {
			out.NTP.Dropped[r.String()] = st.Dropped[r]
		}
	}
	if gt := g.gate.Load(); gt != nil && gt.table != nil {
		ts := gt.table.Stats()
		out.Rate.NTP = report.RateTable{Enabled: true, Entries: ts.Entries, Capacity: ts.Capacity, Evictions: ts.Evictions}
	}
	if g.nts != nil {
		ks, ts, lost := g.nts.stats()
		out.KE = keStats(ks)
		if h := g.nts.helpers; h != nil {
			out.KE.Helpers, out.KE.HelperRestarts, out.KE.HelperFailuresLost = h.Processes(), h.Restarts(), lost
		}
		if ts != nil {
			out.Rate.KE = &report.RateTable{Enabled: true, Entries: ts.Entries, Capacity: ts.Capacity, Evictions: ts.Evictions}
		}
	}
	return out
}

func keStats(ks kelisten.Stats) report.KEStats {
	refused := ks.RefusedByReason()
	refused["accept-error"] = ks.AcceptErrors
	return report.KEStats{
		Accepted: ks.Accepted, Active: ks.Active, Served: ks.Served,
		Refused: refused, Failed: ks.FailedByReason(),
	}
}

// Clients implements report.Reporter from the NTP rate table, which tracks every
// source under a `limited` rule (the default).
func (g *Gateway) Clients(n int) report.Clients {
	out := report.Clients{Rows: []report.Client{}}
	gt := g.gate.Load()
	if gt == nil || gt.table == nil {
		return out
	}
	now := g.opts.now()
	out.Tracked = gt.table.Stats().Entries
	for _, e := range gt.table.Top(n) {
		out.Rows = append(out.Rows, report.Client{Prefix: e.Prefix.String(), Requests: uint64(e.Requests), Limited: uint64(e.Limited), SinceRx: now.Sub(e.Seen).Seconds()})
	}
	return out
}

// KeyRing implements report.Reporter.
func (g *Gateway) KeyRing() report.KeyRing {
	if g.keys == nil {
		return report.KeyRing{Keys: []report.Key{}}
	}
	now := g.opts.now()
	if f := g.keys.fleet; f != nil {
		return fleetReport(f.Status(), now)
	}
	rot := g.keys.rotator
	out := report.KeyRing{File: rot.Path(), NextRotate: rot.NextRotation(), Follow: rot.Follow, Keys: []report.Key{}}
	if !rot.Manual && !rot.Follow {
		out.RotateEvery = rot.Interval.Seconds()
		if rot.Interval == 0 {
			out.RotateEvery = keystore.DefaultInterval.Seconds()
		}
	}
	ring := rot.Ring()
	if ring == nil {
		return out
	}
	for i, k := range ring.Keys() {
		role := report.KeyOpening
		switch {
		case i < ring.Pending():
			role = report.KeyNext
		case i == ring.Pending():
			role = report.KeySealing
		}
		out.Keys = append(out.Keys, report.Key{ID: strconv.FormatUint(uint64(k.ID), 10), Role: role, Created: k.Created, Age: now.Sub(k.Created).Seconds()})
	}
	return out
}

func fleetReport(st etcdring.Status, now time.Time) report.KeyRing {
	out := report.KeyRing{Keys: []report.Key{}, Fleet: &report.Fleet{
		Prefix: st.Prefix, Endpoints: st.Endpoints, Connected: st.Connected, Since: st.Since, LastSync: st.LastSync,
		LastError: st.LastError, Refused: st.Refused, Published: st.Published,
		Delay: st.Delay.Seconds(), Grace: st.Grace.Seconds(), NextEvent: st.NextEvent, Policy: st.Policy,
		Cutoff: st.Cutoff,
	}}
	for _, k := range st.Keys {
		out.Keys = append(out.Keys, report.Key{ID: strconv.FormatUint(uint64(k.ID), 10), Role: k.Role,
			Created: k.Created, Age: now.Sub(k.Created).Seconds(), Seals: k.Activate})
	}
	return out
}

// Cert implements report.Reporter.
func (g *Gateway) Cert() (report.Cert, bool) {
	if g.nts == nil {
		return report.Cert{}, false
	}
	info := g.nts.store.Info()
	c := report.Cert{
		CertFile: g.nts.certFile, KeyFile: g.nts.keyFile,
		Subject: info.Subject, Issuer: info.Issuer, KeyType: info.KeyType,
		NotBefore: info.NotBefore, NotAfter: info.NotAfter,
		ExpiresIn:   info.NotAfter.Sub(g.opts.now()).Seconds(),
		SHA256:      hex.EncodeToString(info.Fingerprint[:]),
		ChainLength: info.ChainLen,
		SelfSigned:  info.Subject == info.Issuer,
		Loaded:      g.nts.certLoaded(),
	}
	for _, san := range info.SANs {
		if net.ParseIP(san) != nil {
			c.IPAddresses = append(c.IPAddresses, san)
		} else {
			c.DNSNames = append(c.DNSNames, san)
		}
	}
	return c, true
}

func leapWords(l ntp.Leap) string {
	switch l {
	case ntp.LeapNone:
		return "normal"
	case ntp.LeapAdd:
		return "insert second"
	case ntp.LeapDelete:
		return "delete second"
	}
	return "not synchronised"
}

// Version is the module version, VCS revision (+dirty), commit time and Go
// version the binary was built from: what `timegate -version`, `gatectl
// version` and `gatectl status` print.
func Version() string {
	version, rev, when, dirty := "(devel)", "unknown revision", "", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = " " + s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
	}
	return fmt.Sprintf("%s (%s%s%s) %s", version, rev, dirty, when, runtime.Version())
}

// modeName names RFC 5905 §7.3's modes as `serverstats` labels them.
func modeName(m int) string {
	return [...]string{"reserved", "symmetric-active", "symmetric-passive", "client", "server", "broadcast", "control", "private"}[m&7]
}
