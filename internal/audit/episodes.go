package audit

import (
	"context"
	"net/netip"
	"strconv"
	"time"

	"timegate/audit"
	"timegate/ntp"
)

// Episodes turns refusals reported through a Ring into one record per
// source network, kind and reason per interval: "192.0.2.0/24 was rate
// limited 4,211 times between 14:00:00 and 14:00:10", never a record per
// packet. Memory is fixed: at most MaxSources entries per interval; the
// rest is summed into one "other" entry per reason.
type Episodes struct {
	Ring     *Ring
	Rec      Recorder
	Interval time.Duration // default 10 s
	// KEReason names a KindNTSKE code (kelisten's reasons).
	KEReason   func(code uint8) string
	MaxSources int // default 1024
	Now        func() time.Time
}

// Defaults for Episodes.
const (
	DefaultEpisodeInterval = 10 * time.Second
	defaultMaxSources      = 1024
	drainInterval          = 100 * time.Millisecond
)

type episodeKey struct {
	prefix netip.Prefix // invalid: the "other" bucket
	kind   Kind
	code   uint8
}

type episode struct {
	count       uint64
	first, last time.Time
}

// Run drains the ring and writes episodes until ctx ends, then flushes.
func (e *Episodes) Run(ctx context.Context) error {
	interval := e.Interval
	if interval <= 0 {
		interval = DefaultEpisodeInterval
	}
	open := map[episodeKey]*episode{}
	tick := time.NewTicker(drainInterval)
	defer tick.Stop()
	start := e.now()
	for {
		select {
		case <-ctx.Done():
			e.drain(open)
			e.flush(open, start)
			return nil
		case <-tick.C:
		}
		e.drain(open)
		if e.now().Sub(start) >= interval {
			e.flush(open, start)
			clear(open)
			start = e.now()
		}
	}
}

func (e *Episodes) drain(open map[episodeKey]*episode) {
	now := e.now()
	limit := e.MaxSources
	if limit <= 0 {
		limit = defaultMaxSources
	}
	e.Ring.drain(func(addr netip.Addr, kind Kind, code uint8) {
		k := episodeKey{prefix: sourcePrefix(addr), kind: kind, code: code}
		ep := open[k]
		if ep == nil {
			if len(open) >= limit {
				k.prefix = netip.Prefix{}
				ep = open[k]
			}
			if ep == nil {
				ep = &episode{first: now}
				open[k] = ep
			}
		}
		ep.count++
		ep.last = now
	})
	if lost := e.Ring.takeLost(); lost > 0 {
		k := episodeKey{kind: numKinds}
		ep := open[k]
		if ep == nil {
			ep = &episode{first: now}
			open[k] = ep
		}
		ep.count += lost
		ep.last = now
	}
}

// sourcePrefix is the unit an episode is about: the IPv4 address, or the
// IPv6 /64 (one end site).
func sourcePrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

func (e *Episodes) flush(open map[episodeKey]*episode, start time.Time) {
	for k, ep := range open {
		typ, reason := e.describe(k)
		prefix := "other"
		if k.prefix.IsValid() {
			prefix = k.prefix.String()
		}
		e.Rec.Record(audit.Event{
			Type: typ, Outcome: audit.OutcomeDenied, Subject: audit.Subject{Prefix: prefix}, Time: ep.last,
			Details: map[string]string{
				"reason": reason, "count": strconv.FormatUint(ep.count, 10),
				"first": audit.FormatTime(ep.first), "last": audit.FormatTime(ep.last),
				"interval_start": audit.FormatTime(start),
			},
		})
	}
}

func (e *Episodes) describe(k episodeKey) (audit.Type, string) {
	switch k.kind {
	case KindNTP:
		return NTPEpisodeType(ntp.Reason(k.code)), ntp.Reason(k.code).String()
	case KindNTSKE:
		name := strconv.Itoa(int(k.code))
		if e.KEReason != nil {
			name = e.KEReason(k.code)
		}
		return audit.TypeNTSKEFailure, name
	}
	return audit.TypeDropped, "refusals not attributed: hand-off ring full (flood)"
}

// NTPEpisodeType is the episode type of an NTP refusal reason, or "" for
// reasons that are not audited (malformed packets are noise, not events).
// It is cheap enough for the per-packet path to call before Offer.
func NTPEpisodeType(r ntp.Reason) audit.Type {
	switch r {
	case ntp.ReasonPolicy, ntp.ReasonRequireAuth:
		return audit.TypeAccessDenied
	case ntp.ReasonRateLimited:
		return audit.TypeRateLimited
	case ntp.ReasonUnknownKey, ntp.ReasonBadMAC, ntp.ReasonBadCookie, ntp.ReasonBadNTS:
		return audit.TypeAuthFailure
	}
	return ""
}

func (e *Episodes) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}
