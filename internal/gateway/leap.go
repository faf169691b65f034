package gateway

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
	"timegate/internal/config"
	"timegate/internal/engine"
	"timegate/internal/udpserve"
	"timegate/leap"
	"timegate/ntp"
)

// readLeapTable reads the configured leap-second table, nil when none is
// configured. The file is read whole up to leap.MaxFileSize; a bigger one
// is refused, not truncated.
func readLeapTable(l *config.Leap) (*leap.Table, error) {
	path := l.TablePath()
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, leap.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if l.File != "" {
		return leap.ParseList(data)
	}
	return leap.ParseTZif(data)
}

// leapDirectiveName names the directive that set the table, for messages.
func leapDirectiveName(cfg *config.Config) string {
	switch {
	case cfg.Leap.TZ != "":
		return "leapsectz"
	case cfg.Positions["leapseclist"].File != "":
		return "leapseclist"
	}
	return "leapfile"
}

// readLeap reads and checks the configured leap-second table (nil when
// none is configured). A table that does not parse or whose hash does not
// match is a configuration error: at start the gateway does not start; a
// reload is refused and the old table kept.
func readLeap(cfg *config.Config) (*leap.Table, error) {
	tb, err := readLeapTable(&cfg.Leap)
	if err != nil {
		name := leapDirectiveName(cfg)
		return nil, fmt.Errorf("%w: %s: %s: %s: %w", config.ErrConfig, cfg.Positions[name], name, cfg.Leap.TablePath(), err)
	}
	return tb, nil
}

// applyLeap puts a table read by readLeap in service. An expired table is
// loaded but never trusted as complete: a warning, an audit record, `gatectl
// status` and the metrics say so, and the upstream vote decides as if there
// were none (leap.Decide).
func (g *Gateway) applyLeap(cfg *config.Config, tb *leap.Table) []string {
	name := leapDirectiveName(cfg)
	old := g.leapTable.Swap(tb)
	if g.leapExpiry != nil {
		g.leapExpiry.Stop()
		g.leapExpiry = nil
	}
	if tb == nil {
		return nil
	}
	path := cfg.Leap.TablePath()
	details := map[string]string{"path": path, "entries": fmt.Sprint(len(tb.Entries)), "expires": "unknown"}
	if !tb.Expires.IsZero() {
		details["expires"] = tb.Expires.Format(time.DateOnly)
	}
	now := g.opts.now()
	if tb.Expired(now) {
		w := fmt.Sprintf("%s: %s: %s expired on %s: leap seconds it does not list are taken from the upstream vote; install a current copy (IERS, NIST or tzdata)",
			cfg.Positions[name], name, path, tb.Expires.Format(time.DateOnly))
		g.rec.Record(audit.Event{Type: audit.TypeLeapTable, Outcome: audit.OutcomeWarning, Details: details})
		return []string{w}
	}
	if old == nil || !old.Expires.Equal(tb.Expires) || len(old.Entries) != len(tb.Entries) {
		g.rec.Record(audit.Event{Type: audit.TypeLeapTable, Outcome: audit.OutcomeOK, Details: details})
	}
	g.log.Info("leap-second table loaded", zap.String("path", path), zap.Int("entries", len(tb.Entries)),
		zap.String("expires", details["expires"]))
	if !tb.Expires.IsZero() {
		// Say so the moment it expires while running, not at the next reload.
		g.leapExpiry = time.AfterFunc(tb.Expires.Sub(now), func() {
			if g.leapTable.Load() != tb {
				return
			}
			g.log.Warn("leap-second table expired", zap.String("path", path), zap.Time("expired", tb.Expires))
			g.rec.Record(audit.Event{Type: audit.TypeLeapTable, Outcome: audit.OutcomeWarning, Details: details})
		})
	}
	return nil
}

// leapOptions are the engine's leap settings from cfg.
func (g *Gateway) leapOptions(cfg *config.Config) engine.LeapOptions {
	o := engine.LeapOptions{Table: g.leapTable.Load, Mode: cfg.Leap.Mode}
	if s := cfg.Leap.Smooth; s != nil {
		o.Smooth = leap.NewSmooth(s.MaxFreq, s.MaxWander)
		o.PublishSmooth = g.smoothState.Store
	}
	return o
}

// LeapTable describes the loaded leap-second table for status and metrics.
type LeapTable struct {
	Path    string
	Entries int
	Expires time.Time // zero: the file does not say (TZif)
	Expired bool
}

// LeapTableStatus returns the loaded table's state; ok is false without one.
func (g *Gateway) LeapTableStatus() (LeapTable, bool) {
	tb := g.leapTable.Load()
	if tb == nil {
		return LeapTable{}, false
	}
	cfg := g.cfg.Load()
	return LeapTable{Path: cfg.Leap.TablePath(), Entries: len(tb.Entries), Expires: tb.Expires, Expired: tb.Expired(g.opts.now())}, true
}

// smoothGate admits only the networks `smoothallow` names to the smoothing
// port, then applies the normal access policy and rate limits: smoothed
// time is opt-in per network and never reaches anyone else.
type smoothGate struct {
	allow []netip.Prefix
	inner ntp.Gate
}

func (s *smoothGate) Admit(client netip.Addr, now time.Time, auth ntp.AuthKind) ntp.Admission {
	for _, p := range s.allow {
		if p.Contains(client) {
			if s.inner == nil {
				return ntp.Admission{Action: ntp.ActionReply}
			}
			return s.inner.Admit(client, now, auth)
		}
	}
	return ntp.Admission{Action: ntp.ActionDrop, Reason: ntp.ReasonPolicy}
}

// smoothResponder is the responder of the smoothing port: the same
// authentication and policy as r, the smoothed state, and smoothallow.
//
// It is built even when a reload removed smoothtime (a restart-only change):
// the port then stays open until the restart, and answers only what
// smoothallow still names, nobody once it is gone.
func (g *Gateway) smoothResponder(cfg *config.Config, r *ntp.Responder) *ntp.Responder {
	sr := *r
	sr.State = g.smoothState.Load
	sr.Gate = &smoothGate{allow: cfg.Leap.SmoothAllow, inner: r.Gate}
	return &sr
}

// openSmoothUDP binds the smoothing port on the served addresses.
func (g *Gateway) openSmoothUDP(cfg *config.Config) error {
	if cfg.Leap.Smooth == nil || cfg.Leap.SmoothPort == 0 {
		return nil
	}
	addrs := cfg.BindAddresses
	if len(addrs) == 0 {
		addrs = []netip.Addr{{}}
	}
	workers := min(cfg.NTPWorkers, 2)
	if workers == 0 {
		workers = min(runtime.GOMAXPROCS(0), 2) // a side service: two sockets are plenty
	}
	for _, a := range addrs {
		group, err := udpserve.Listen(context.Background(), netip.AddrPortFrom(a, uint16(cfg.Leap.SmoothPort)), workers, cfg.NTPRcvBuf)
		if err != nil {
			return fmt.Errorf("gateway: smoothport: %w", err)
		}
		g.smoothUDP = append(g.smoothUDP, group)
		g.log.Info("serving leap-smoothed NTP", zap.Stringer("addr", group[0].LocalAddr()),
			zap.Int("networks", len(cfg.Leap.SmoothAllow)), zap.Int("rcvbuf", g.checkRcvBuf(cfg, group[0])))
	}
	return nil
}
