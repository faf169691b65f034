package metrics

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"timegate/internal/kelisten"
	"timegate/internal/report"
	"timegate/ntp"
)

// sourcesTimeout bounds how long a scrape waits for the upstream engine's
// loop: a busy loop costs the scrape its per-source metrics, never a hang.
const sourcesTimeout = 2 * time.Second

// collector reads the gateway's snapshots at scrape time. It keeps nothing
// between scrapes and puts nothing on the packet path.
type collector struct {
	rep report.Reporter
	raw Raw
	d   *descs
	log *zap.Logger
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d.all() {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	e := emitter{ch: ch}
	c.status(e, c.rep.Status())
	ss := c.rep.ServerStats()
	c.ntp(e, &ss.NTP)
	c.ke(e, &ss.KE)
	c.rate(e, &ss.Rate)
	c.sources(e)
	c.keyRing(e, c.rep.KeyRing())
	if cert, ok := c.rep.Cert(); ok {
		e.gauge(c.d.certExpiry, unix(cert.NotAfter))
		if !cert.Loaded.IsZero() {
			e.gauge(c.d.certLoaded, unix(cert.Loaded))
		}
	}
}

// emitter sends constant metrics.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

// oneHot emits 1 for the value that is and 0 for every other, so that an
// alert can test a state without knowing which series exist.
func (e emitter) oneHot(d *prometheus.Desc, states []string, is string, labels ...string) {
	for _, s := range states {
		e.gauge(d, bool01(s == is), append(labels, s)...)
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func syncStates() []string {
	return []string{report.StateSynchronised, report.StateHoldover, report.StateLocal, report.StateUnsynchronised}
}

func (c *collector) status(e emitter, st report.Status) {
	e.gauge(c.d.buildInfo, 1, st.Version)
	e.gauge(c.d.synced, bool01(st.Synchronised))
	e.oneHot(c.d.syncState, syncStates(), st.State)
	e.gauge(c.d.stratum, float64(st.Stratum))
	e.gauge(c.d.rootDelay, st.RootDelay)
	e.gauge(c.d.rootDisp, st.RootDispersion)
	e.gauge(c.d.rootDist, st.RootDistance)
	e.gauge(c.d.clockOffset, st.Offset)
	e.gauge(c.d.clockFreq, st.FrequencyPPM/1e6)
	if st.SinceEstimate >= 0 {
		e.gauge(c.d.estimateAge, st.SinceEstimate)
	}
	e.gauge(c.d.truechimers, float64(st.Truechimers))
	e.gauge(c.d.upSources, float64(st.Sources))
	if !st.ConfigLoaded.IsZero() {
		e.gauge(c.d.cfgLoaded, unix(st.ConfigLoaded))
	}
	e.gauge(c.d.cfgWarnings, float64(len(st.Warnings)))
	if st.LeapTable != "" {
		if !st.LeapTableExpires.IsZero() {
			e.gauge(c.d.leapExpiry, unix(st.LeapTableExpires))
		}
		e.gauge(c.d.leapExpired, bool01(st.LeapTableExpired))
	}
	if st.Audit != nil {
		c.audit(e, st.Audit)
	}
}

// audit emits the audit trail's series; the shipping ones only with
// auditship, so that no collector does not read as a disconnected one.
func (c *collector) audit(e emitter, a *report.AuditStatus) {
	e.gauge(c.d.auditSeq, float64(a.LastSeq))
	e.counter(c.d.auditDropped, a.DroppedTotal)
	e.gauge(c.d.auditFailing, bool01(a.WriteFailing))
	e.gauge(c.d.auditRotateFailing, bool01(a.RotateError != ""))
	e.gauge(c.d.auditSegments, float64(a.Segments))
	e.gauge(c.d.auditDisk, float64(a.DiskBytes))
	s := a.Shipping
	if s == nil {
		return
	}
	e.gauge(c.d.shipConnected, bool01(s.Connected))
	e.gauge(c.d.shipAcked, float64(s.AckedSeq))
	e.gauge(c.d.shipBacklog, float64(s.BacklogBytes))
	e.gauge(c.d.shipLimit, float64(s.SpoolMax))
	e.gauge(c.d.shipAlarm, bool01(s.Alarm))
	e.counter(c.d.shipSkipped, s.Skipped)
	e.counter(c.d.shipReconnects, s.Reconnects)
	if !s.Since.IsZero() {
		e.gauge(c.d.shipSince, unix(s.Since))
	}
}

// modeNames label the NTP mode field (RFC 5905 figure 10).
func modeNames() [8]string {
	return [8]string{"reserved", "symmetric-active", "symmetric-passive", "client", "server", "broadcast", "control", "private"}
}

func (c *collector) ntp(e emitter, s *report.NTPStats) {
	e.counter(c.d.ntpReceived, s.Received)
	e.counter(c.d.ntpKernelDrops, s.KernelDrops)
	if c.raw.NTP != nil {
		raw := c.raw.NTP()
		for i, name := range modeNames() {
			e.counter(c.d.ntpRequests, raw.ByMode[i], name)
		}
	}
	var dropped, kod uint64
	for reason, n := range s.Dropped {
		e.counter(c.d.ntpDropped, n, reason)
		dropped += n
	}
	for code, n := range s.KoD {
		e.counter(c.d.ntpKoD, n, code)
		kod += n
	}
	for auth, n := range s.Answered {
		e.counter(c.d.ntpAnswered, n, auth)
	}
	e.counter(c.d.ntpVerdicts, s.Replied, "reply")
	e.counter(c.d.ntpVerdicts, kod, "kod")
	e.counter(c.d.ntpVerdicts, s.NTSNAK, "nts-nak")
	e.counter(c.d.ntpVerdicts, dropped, "drop")
	e.counter(c.d.ntpVerdicts, s.SendErrors, "send-error")
	e.counter(c.d.ntpNAKs, s.NTSNAK)
	e.counter(c.d.ntpLeaked, s.Leaked)
	e.counter(c.d.ntpInterleaved, s.Interleaved)
	e.counter(c.d.ntpTxStamps, s.TxStamps)
	e.gauge(c.d.ntpTimestamps, float64(s.Timestamps))
	e.gauge(c.d.ntpTxLead, float64(s.TxLeadNS)/1e9)
	// A cookie that does not open earns a NAK (RFC 8915 §5.7) unless the NAK
	// cannot be sent; those are counted as drops for that reason.
	e.counter(c.d.cookieOpenFailures, s.NTSNAK+s.Dropped[ntp.ReasonBadCookie.String()])
}

func (c *collector) ke(e emitter, s *report.KEStats) {
	var raw kelisten.Stats
	ok := false
	if c.raw.KE != nil {
		raw, ok = c.raw.KE()
	}
	if !ok && s.Refused == nil && s.Failed == nil {
		return // NTS-KE is off
	}
	e.counter(c.d.keAccepted, s.Accepted)
	e.gauge(c.d.keActive, float64(s.Active))
	e.counter(c.d.keHandshakes, s.Served)
	for reason, n := range s.Refused {
		e.counter(c.d.keRefused, n, reason)
	}
	for reason, n := range s.Failed {
		e.counter(c.d.keFailures, n, reason)
	}
	if ok {
		e.ch <- histogram(c.d.keDuration, &raw.Latency)
	}
	if s.Helpers > 0 {
		e.counter(c.d.keRestarts, s.HelperRestarts)
	}
}

func histogram(d *prometheus.Desc, h *kelisten.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Cumulative[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets)
}

func (c *collector) rate(e emitter, s *report.RateStats) {
	table := func(name string, t *report.RateTable) {
		if t == nil || !t.Enabled {
			return
		}
		e.gauge(c.d.rateEntries, float64(t.Entries), name)
		e.gauge(c.d.rateCapacity, float64(t.Capacity), name)
		e.counter(c.d.rateEvictions, t.Evictions, name)
	}
	table("ntp", &s.NTP)
	table("nts-ke", s.KE)
}

// sourceStates are every report.Source state, for the one-hot series.
func sourceStates() []string {
	return []string{
		report.SourceSelected, report.SourceCombined, report.SourceCandidate, report.SourceFalseticker,
		report.SourceTooFar, report.SourceNotSelectable, report.SourceUnreachable, report.SourceKEFailing,
		report.SourceResolving, report.SourceStopped, report.SourceInit,
	}
}

func (c *collector) sources(e emitter) {
	ctx, cancel := context.WithTimeout(context.Background(), sourcesTimeout)
	defer cancel()
	rows, err := c.rep.Sources(ctx)
	if err != nil {
		c.log.Debug("scrape without per-source metrics", zap.Error(err))
		return
	}
	seen := make(map[[2]string]bool, len(rows))
	for i := range rows {
		s := &rows[i]
		// An NTS pool's address is known by its NTS-KE server until the
		// KE names the NTP server.
		addr := s.Address
		if addr == "" {
			addr = s.KEAddress
		}
		key := [2]string{s.Name, addr}
		if seen[key] {
			continue // pool members not resolved yet share a name and no address
		}
		seen[key] = true
		c.source(e, s, s.Name, addr)
	}
}

func (c *collector) source(e emitter, s *report.Source, labels ...string) {
	e.oneHot(c.d.srcState, sourceStates(), s.State, labels...)
	e.gauge(c.d.srcReach, float64(s.Reach), labels...)
	e.gauge(c.d.srcAuthenticated, bool01(s.Authenticated), labels...)
	e.counter(c.d.srcSent, s.Sent, labels...)
	e.counter(c.d.srcReceived, s.Received, labels...)
	if s.State != report.SourceResolving {
		e.gauge(c.d.srcPoll, math.Ldexp(1, int(s.Poll)), labels...)
	}
	if s.Auth == "nts" {
		e.gauge(c.d.srcCookies, float64(s.Cookies), labels...)
	}
	if s.Samples == 0 {
		return // no offset, delay or stratum yet: absent rather than a false 0
	}
	e.gauge(c.d.srcOffset, s.Offset, labels...)
	e.gauge(c.d.srcDelay, s.Delay, labels...)
	e.gauge(c.d.srcJitter, s.Jitter, labels...)
	e.gauge(c.d.srcRootDist, s.RootDistance, labels...)
	e.gauge(c.d.srcStratum, float64(s.Stratum), labels...)
}

func keyRoles() []string { return []string{report.KeySealing, report.KeyNext, report.KeyOpening} }

func (c *collector) keyRing(e emitter, kr report.KeyRing) {
	if f := kr.Fleet; f != nil {
		connected := 0.0
		if f.Connected {
			connected = 1
		}
		e.gauge(c.d.fleetConnected, connected)
		if !f.LastSync.IsZero() {
			e.gauge(c.d.fleetLastSync, unix(f.LastSync))
		}
		e.counter(c.d.fleetRefused, f.Refused)
	}
	if len(kr.Keys) == 0 {
		return // NTS-KE is off
	}
	count := map[string]float64{}
	oldest, sealing := 0.0, -1.0
	for _, k := range kr.Keys {
		count[k.Role]++
		oldest = max(oldest, k.Age)
		if k.Role == report.KeySealing && sealing < 0 {
			sealing = k.Age
		}
	}
	if sealing >= 0 {
		e.gauge(c.d.sealingKeyAge, sealing)
	}
	for _, role := range keyRoles() {
		e.gauge(c.d.keys, count[role], role)
	}
	e.gauge(c.d.oldestKeyAge, oldest)
	if !kr.NextRotate.IsZero() {
		e.gauge(c.d.nextRotation, unix(kr.NextRotate))
	}
}
