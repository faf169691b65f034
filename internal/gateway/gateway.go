// Package gateway wires timegate together: configuration in, sockets,
// listeners and background jobs out. It is the edge that owns goroutines;
// every decision it relays is made by the pure packages.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/internal/engine"
	"timegate/internal/udpserve"
	"timegate/ntp"
	"timegate/nts"
	"timegate/symkey"
)

// Options are what the daemon's command line decides.
type Options struct {
	// ConfigPath is re-read on Reload; empty means the embedded defaults.
	ConfigPath string
	// StateDir holds state the config does not place (ntsdumpdir default,
	// generated certificate).
	StateDir string
	Log      *zap.Logger
	// Now is the system clock; nil = time.Now.
	Now func() time.Time
}

// Gateway is a running timegate.
type Gateway struct {
	opts      Options
	log       *zap.Logger
	cfg       atomic.Pointer[config.Config]
	state     atomic.Pointer[ntp.ServedState]
	responder atomic.Pointer[ntp.Responder]
	gate      atomic.Pointer[gate]
	udp       []*net.UDPConn
	nts       *ntsService    // nil when NTS-KE is off (ntsport 0)
	upstream  *engine.Engine // nil without server/pool lines
	stats     udpserve.Stats
	precision int8
}

// New checks cfg and opens every socket, so that a bad configuration or a
// port in use fails at start rather than later.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	g := &Gateway{opts: opts, log: opts.Log, precision: measurePrecision(opts.now)}
	g.cfg.Store(cfg)
	// Each line accepted without the effect it has in chrony or ntpd is said
	// once, at start-up, with its file:line and why.
	for _, w := range cfg.Warnings {
		g.log.Warn("configuration", zap.String("warning", w.String()))
	}
	g.state.Store(g.initialState(cfg))
	// The keys file is read once and serves both directions: the upstream
	// engine's `key ID` sources and the responder's keyed clients.
	keys, err := g.loadKeys(cfg)
	if err != nil {
		return nil, err
	}
	for _, w := range syncWarnings(cfg, keys) {
		g.log.Warn("configuration", zap.String("warning", w))
	}
	up, err := g.newUpstream(cfg, keys)
	if err != nil {
		return nil, err
	}
	g.upstream = up
	if err := g.open(cfg, keys); err != nil {
		g.closeAll()
		return nil, err
	}
	return g, nil
}

// open binds the sockets and builds the NTP responder, which needs the NTS
// key ring that opening NTS-KE loads.
func (g *Gateway) open(cfg *config.Config, keys *symkey.Set) error {
	if err := g.openUDP(cfg); err != nil {
		return err
	}
	if cfg.NTSPort != 0 {
		var err error
		if g.nts, err = g.openNTS(context.Background(), cfg); err != nil {
			return err
		}
	}
	resp, err := g.buildResponder(cfg, keys)
	if err != nil {
		return err
	}
	g.responder.Store(resp)
	return nil
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// initialState is what the gateway serves before any upstream is usable:
// the local clock at the configured stratum (chrony's `local`), or
// unsynchronised so that no client trusts it.
func (g *Gateway) initialState(cfg *config.Config) *ntp.ServedState {
	if cfg.Local == nil {
		reason := "no upstream sources are configured and there is no `local` directive"
		if len(cfg.Sources) > 0 {
			reason = "no upstream source is usable yet"
		}
		g.log.Warn("serving as unsynchronised (leap 3, stratum 16)", zap.String("why", reason))
		return ntp.Unsynchronised(g.precision)
	}
	g.log.Info("serving the local clock", zap.Int("stratum", cfg.Local.Stratum))
	return &ntp.ServedState{
		Leap:      ntp.LeapNone,
		Stratum:   uint8(cfg.Local.Stratum),
		RefID:     localRefID,
		RefTime:   g.opts.now(),
		Precision: g.precision,
		// RFC 5905 has no better bound for an undisciplined local clock;
		// chrony's local reference reports a small fixed dispersion too.
		RootDispersion: 10 * time.Millisecond,
	}
}

// loadKeys reads the keys file and logs its warnings (legacy digests).
func (g *Gateway) loadKeys(cfg *config.Config) (*symkey.Set, error) {
	keys, warnings, err := loadKeys(cfg)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		g.log.Warn("keyfile", zap.String("warning", w))
	}
	return keys, nil
}

// localRefID is 127.127.1.1, the reference ID chrony and ntpd use for the
// local clock driver.
const localRefID = 0x7f7f0101

// buildResponder builds everything the NTP path decides with from cfg and
// the already loaded keys; nothing is half-applied.
func (g *Gateway) buildResponder(cfg *config.Config, keys *symkey.Set) (*ntp.Responder, error) {
	gt, err := buildGate(cfg)
	if err != nil {
		return nil, err
	}
	if prev := g.responder.Load(); prev != nil && gt.table != nil {
		// Keep the rate table's history across a reload when its
		// configuration is unchanged, so a reload is no amnesty for a flood.
		if pg, ok := prev.Gate.(*gate); ok && pg.table != nil && pg.table.Config() == gt.table.Config() {
			gt.table = pg.table
		}
	}
	g.gate.Store(gt)
	r := &ntp.Responder{
		State: g.state.Load,
		Now:   g.opts.Now,
		Gate:  gt,
		Keys:  keyLookup(keys),
	}
	if g.nts != nil {
		r.NTS = &nts.Server{Ring: g.nts.rotator.Ring}
	}
	return r, nil
}

// openUDP binds one socket per configured address, or one dual-stack socket
// for all addresses (Go opens [::] with IPV6_V6ONLY off).
func (g *Gateway) openUDP(cfg *config.Config) error {
	if cfg.Port == 0 {
		return nil
	}
	addrs := cfg.BindAddresses
	if len(addrs) == 0 {
		addrs = []netip.Addr{{}}
	}
	for _, a := range addrs {
		ua := &net.UDPAddr{Port: cfg.Port}
		if a.IsValid() {
			ua.IP = a.AsSlice()
		}
		c, err := net.ListenUDP("udp", ua)
		if err != nil {
			return fmt.Errorf("gateway: NTP port: %w", err)
		}
		g.udp = append(g.udp, c)
		g.log.Info("serving NTP", zap.Stringer("addr", c.LocalAddr()))
	}
	return nil
}

// Run serves until ctx ends.
func (g *Gateway) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(g.udp)+16)
	// A component that fails stops the whole gateway: serving half of the
	// configured service silently is worse than exiting for the supervisor.
	spawn := func(f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	for _, c := range g.udp {
		srv := &udpserve.Server{Conn: c, Responder: g.responder.Load, Stats: &g.stats, Log: g.log.Named("ntp")}
		spawn(func() error { return srv.Serve(ctx) })
	}
	if g.nts != nil {
		g.nts.run(ctx, spawn)
	}
	if g.upstream != nil {
		spawn(func() error { return g.upstream.Run(ctx) })
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// Stats returns the NTP verdict counters.
func (g *Gateway) Stats() *udpserve.Stats { return &g.stats }

// State returns what is being served now.
func (g *Gateway) State() *ntp.ServedState { return g.state.Load() }

func (g *Gateway) closeAll() {
	for _, c := range g.udp {
		c.Close()
	}
	if g.nts != nil {
		g.nts.close()
	}
}

// measurePrecision estimates the clock's precision as RFC 5905 §7.3 defines
// it (log2 seconds of the smallest reading step), like chrony's measurement
// at start-up.
func measurePrecision(now func() time.Time) int8 {
	best := time.Second
	for range 64 {
		a := now()
		b := now()
		// Bounded: an injected clock that never moves must not hang us.
		for i := 0; b.Equal(a) && i < 1000; i++ {
			b = now()
		}
		if d := b.Sub(a); d > 0 && d < best {
			best = d
		}
	}
	p := int8(0)
	for d := time.Second; d > best && p > -30; d /= 2 {
		p--
	}
	return p
}

// Reload re-reads the configuration file and applies what can change
// without a restart. A file with errors is rejected whole and the running
// configuration keeps serving.
func (g *Gateway) Reload() error {
	var cfg *config.Config
	var err error
	if g.opts.ConfigPath == "" {
		cfg, err = config.Embedded()
	} else {
		cfg, err = config.Load(g.opts.ConfigPath)
	}
	if err != nil {
		return err
	}
	keys, err := g.loadKeys(cfg)
	if err != nil {
		// Report a bad rate-limit setting in the same pass as the keys file.
		_, gateErr := buildGate(cfg)
		return errors.Join(err, gateErr)
	}
	resp, err := g.buildResponder(cfg, keys)
	if err != nil {
		return err
	}
	old := g.cfg.Load()
	if old.Port != cfg.Port || old.NTSPort != cfg.NTSPort || fmt.Sprint(old.BindAddresses) != fmt.Sprint(cfg.BindAddresses) {
		g.log.Warn("port and bindaddress changes take effect only after a restart")
	}
	if g.nts != nil {
		if err := g.nts.reloadCert(); err != nil {
			return fmt.Errorf("gateway: certificate: %w", err)
		}
	}
	g.cfg.Store(cfg)
	g.responder.Store(resp)
	g.log.Info("configuration reloaded")
	return nil
}
