// Package gateway wires timegate together: configuration in, sockets,
// listeners and background jobs out. It is the edge that owns goroutines;
// every decision it relays is made by the pure packages.
package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
	"timegate/interleave"
	iaudit "timegate/internal/audit"
	"timegate/internal/config"
	"timegate/internal/control"
	"timegate/internal/engine"
	"timegate/internal/udpserve"
	"timegate/leap"
	"timegate/ntp"
	"timegate/nts"
	"timegate/ratelimit"
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
	// LogLevel and LogJSON are how Log was built (-log-level, -log-json):
	// NTS-KE helper processes log to the same standard error the same way.
	LogLevel string
	LogJSON  bool
	// HelperPath is the program run as an NTS-KE helper (ntsprocesses);
	// empty: this program, whose main must call keproc.HelperMain first
	// when keproc.IsHelper.
	HelperPath string
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
	udp       [][]*net.UDPConn // a group of sockets per served address
	nts       *ntsService      // nil when NTS-KE is off (ntsport 0)
	keys      *keyService      // NTS cookie keys; nil with neither NTP nor NTS-KE served
	// fleetPolicy, when set, is the access policy and rate limit the
	// fleet store holds, in place of the local file's (ntskeystore).
	fleetPolicy atomic.Pointer[config.Policy]
	// keySet is the keys file the responder in service was built with, so
	// that a new fleet policy rebuilds it without re-reading the file.
	keySet atomic.Pointer[symkey.Set]
	// Leap seconds: the table (nil without one), the smoothed state and
	// the responder and sockets of the smoothing port (smoothport).
	leapTable   atomic.Pointer[leap.Table]
	leapExpiry  *time.Timer
	smoothState atomic.Pointer[ntp.ServedState]
	smoothResp  atomic.Pointer[ntp.Responder]
	smoothUDP   [][]*net.UDPConn
	// upstream is nil until there are server/pool lines (at start or after
	// a reload that adds the first ones).
	upstream atomic.Pointer[engine.Engine]
	// spawnEngine starts an engine a reload created, in Run's goroutine
	// group; nil while Run is not running.
	engMu       sync.Mutex
	spawnEngine func(*engine.Engine)
	stats       udpserve.Stats
	keNice      int  // ntskenice as started: NTP workers locked to threads when > 0
	noTxLead    bool // `txlead off` as started
	// growUDP: each NTP group starts with one socket and grows to
	// udpWorkers under load (default ntpworkers where sockets can be bound
	// after start); udpRcvBuf is ntprcvbuf for the sockets added.
	growUDP    bool
	udpWorkers int
	udpRcvBuf  int
	// rcvBufWarned: the log already says the kernel cut ntprcvbuf short
	// (once, not per socket group).
	rcvBufWarned bool
	precision    int8
	started      time.Time
	loaded       atomic.Pointer[loaded]

	reloadMu sync.Mutex // serialises reloads
	keysMu   sync.Mutex // serialises edits of the symmetric keys file

	// The control socket (nil when off) and who may use it.
	ctlLn     *net.UnixListener
	ctlPath   string
	ctlPolicy control.Policy

	metricsLn net.Listener    // nil unless `metrics` is set
	audit     *auditTrail     // nil without auditlog
	rec       iaudit.Recorder // audit events go here; iaudit.Nop without auditlog
}

// New checks cfg and opens every socket, so that a bad configuration or a
// port in use fails at start rather than later.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	g := &Gateway{opts: opts, log: opts.Log, precision: measurePrecision(opts.now), started: opts.now(), rec: iaudit.Nop{}}
	g.cfg.Store(cfg)
	// The audit trail opens first, so that what start-up does (certificate
	// load, key ring) and a failed start are on the record.
	trail, err := g.openAudit(cfg)
	if err != nil {
		return nil, err
	}
	if trail != nil {
		g.audit, g.rec = trail, trail.w
	}
	if err := g.start(cfg); err != nil {
		if g.audit != nil {
			g.audit.close(err)
		}
		return nil, err
	}
	return g, nil
}

// start builds and opens everything but the audit trail.
func (g *Gateway) start(cfg *config.Config) error {
	g.state.Store(g.initialState(cfg))
	g.smoothState.Store(g.state.Load())
	tb, err := readLeap(cfg)
	if err != nil {
		return err
	}
	leapWarnings := g.applyLeap(cfg, tb)
	// The keys file is read once and serves both directions: the upstream
	// engine's `key ID` sources and the responder's keyed clients.
	keys, warnings, err := loadKeys(cfg)
	if err != nil {
		return err
	}
	up, upWarnings, err := g.newUpstream(cfg, keys)
	if err != nil {
		return err
	}
	if up != nil {
		g.upstream.Store(up)
	}
	// What the configuration does not do as written — lines accepted without
	// the effect they have in chrony or ntpd, sources that cannot be used, a
	// configuration that can never synchronise — is logged once, with
	// file:line and why, and kept for `gatectl status` until the next reload.
	warnings = append(configWarnings(cfg), append(warnings, upWarnings...)...)
	warnings = append(warnings, syncWarnings(cfg, keys)...)
	warnings = append(warnings, leapWarnings...)
	for _, w := range warnings {
		g.log.Warn("configuration", zap.String("warning", w))
	}
	g.loaded.Store(&loaded{at: g.started, warnings: warnings})
	if err := g.open(cfg, keys); err != nil {
		g.closeAll()
		return err
	}
	if err := g.controlListen(cfg); err != nil {
		g.closeAll()
		return err
	}
	if err := g.metricsListen(cfg); err != nil {
		g.closeAll()
		return err
	}
	return nil
}

// open binds the sockets and builds the NTP responder, which needs the NTS
// key ring that opening NTS-KE loads.
func (g *Gateway) open(cfg *config.Config, keys *symkey.Set) error {
	if err := g.openUDP(cfg); err != nil {
		return err
	}
	if err := g.openSmoothUDP(cfg); err != nil {
		return err
	}
	var err error
	if g.keys, err = g.openKeys(cfg); err != nil {
		return err
	}
	if cfg.NTSPort != 0 {
		if g.nts, err = g.openNTS(context.Background(), cfg); err != nil {
			return err
		}
	}
	resp, err := g.buildResponder(cfg, keys)
	if err != nil {
		return err
	}
	g.keySet.Store(keys)
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

// localRefID is 127.127.1.1, the reference ID chrony and ntpd use for the
// local clock driver.
const localRefID = 0x7f7f0101

// buildResponder builds everything the NTP path decides with from cfg and
// the already loaded keys; nothing is half-applied.
func (g *Gateway) buildResponder(cfg *config.Config, keys *symkey.Set) (*ntp.Responder, error) {
	if p := g.fleetPolicy.Load(); p != nil {
		cfg = p.Overlay(cfg)
	}
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
	xl, err := g.interleaveTable(cfg)
	if err != nil {
		return nil, err
	}
	r := &ntp.Responder{
		State:      g.state.Load,
		Now:        g.opts.Now,
		Gate:       gt,
		Keys:       keyLookup(keys),
		Interleave: xl,
		// The workers restamp plain replies before the send (on 64-bit
		// Linux): Respond need not read the clock for them.
		EdgeRestamps: udpserve.EdgeRestamps,
	}
	if g.keys != nil {
		// NTS on the NTP path needs no NTS-KE here: an NTP host of a split
		// deployment opens the cookies of the KE host's shared ring.
		r.NTS = &nts.Server{Ring: g.keys.Ring}
	}
	g.smoothResp.Store(g.smoothResponder(cfg, r))
	return r, nil
}

// interleaveTable returns the table of transmit timestamps interleaved
// mode needs: as many entries as the NTP rate table has, as chrony's
// clientlog keeps one timestamp per record, so clientloglimit bounds both.
// A reload keeps the table (and what it holds) while its size is
// unchanged.
func (g *Gateway) interleaveTable(cfg *config.Config) (*interleave.Table, error) {
	n := ratelimit.EntriesForBytes(cfg.ClientLogLimit)
	if prev := g.responder.Load(); prev != nil {
		if t, ok := prev.Interleave.(*interleave.Table); ok && t.Capacity() == n {
			return t, nil
		}
	}
	return interleave.New(n, rand.Reader)
}

// openUDP binds, for each configured address (or once for every address,
// dual-stack: Go opens [::] with IPV6_V6ONLY off), a group of sockets
// sharing the port, one per worker (`ntpworkers`, default one per CPU).
func (g *Gateway) openUDP(cfg *config.Config) error {
	if cfg.Port == 0 {
		return nil
	}
	addrs := cfg.BindAddresses
	if len(addrs) == 0 {
		addrs = []netip.Addr{{}}
	}
	workers := cfg.NTPWorkers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
		// By default one socket serves until load appears, and the others
		// join then (udpserve.Server.Grow) — where they can be bound then.
		g.growUDP = workers > 1 && udpserve.CanGrow(cfg.Port)
	}
	if cfg.NTSProcesses == 0 {
		// With helper processes the nice value is theirs, and this
		// process has no handshakes for its workers to yield to.
		g.keNice = cfg.NTSKENice
	}
	g.noTxLead = !cfg.TxLead
	if g.keNice > 0 && runtime.GOMAXPROCS(0) <= workers {
		// Each worker holds a thread of its own; with no P to spare, a
		// handshake goroutine holding the last one would still make a
		// readable worker wait for it.
		runtime.GOMAXPROCS(workers + 1)
		g.log.Info("ntskenice: GOMAXPROCS raised above the NTP workers", zap.Int("gomaxprocs", workers+1))
	}
	g.udpWorkers, g.udpRcvBuf = workers, cfg.NTPRcvBuf
	open := workers
	if g.growUDP {
		open = 1
	}
	for _, a := range addrs {
		group, err := udpserve.Listen(context.Background(), netip.AddrPortFrom(a, uint16(cfg.Port)), open, cfg.NTPRcvBuf)
		if err != nil {
			return fmt.Errorf("gateway: NTP port: %w", err)
		}
		g.udp = append(g.udp, group)
		g.log.Info("serving NTP", zap.Stringer("addr", group[0].LocalAddr()), zap.Int("sockets", len(group)),
			zap.Int("max_sockets", workers), zap.Int("rcvbuf", g.checkRcvBuf(cfg, group[0])))
	}
	return nil
}

// growUDPGroup opens one more socket for the group bound like group[0].
func (g *Gateway) growUDPGroup(group []*net.UDPConn) func() (*net.UDPConn, error) {
	ap := group[0].LocalAddr().(*net.UDPAddr).AddrPort()
	return func() (*net.UDPConn, error) {
		c, err := udpserve.Listen(context.Background(), ap, 1, g.udpRcvBuf)
		if err != nil {
			return nil, err
		}
		return c[0], nil
	}
}

// checkRcvBuf returns the receive buffer the kernel gave c (0 when it
// cannot be read) and reports, once, when that is less than `ntprcvbuf`
// asked: without CAP_NET_ADMIN the kernel caps SO_RCVBUF at
// net.core.rmem_max without an error, and the operator would otherwise
// believe the buffer set. A size the operator wrote is a warning; the
// default is only noted (info), since an unprivileged service unit on a
// stock kernel gets less and should not warn at every start.
func (g *Gateway) checkRcvBuf(cfg *config.Config, c *net.UDPConn) int {
	got, err := udpserve.ReceiveBuffer(c)
	if err != nil {
		return 0
	}
	if cfg.NTPRcvBuf > 0 && got < cfg.NTPRcvBuf && !g.rcvBufWarned {
		g.rcvBufWarned = true
		pos, explicit := cfg.Positions["ntprcvbuf"]
		fields := []zap.Field{zap.Int("configured", cfg.NTPRcvBuf), zap.Int("granted", got)}
		if explicit {
			g.log.Warn("ntprcvbuf: the kernel granted a smaller NTP receive buffer than configured; raise the sysctl net.core.rmem_max to at least the configured size, or start timegate with CAP_NET_ADMIN (as root), which is not capped by it",
				append(fields, zap.String("directive", pos.String()))...)
		} else {
			g.log.Info("the kernel granted a smaller NTP receive buffer than timegate's default (net.core.rmem_max caps it without CAP_NET_ADMIN); a flood's bursts are absorbed less (see ntprcvbuf)",
				fields...)
		}
	}
	return got
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
	var ring *iaudit.Ring
	stopShip := func() {}
	if g.audit != nil {
		ring = g.audit.ring
		stopShip = g.audit.run(ctx, spawn)
	}
	for _, group := range g.udp {
		srv := &udpserve.Server{Conns: group, Responder: g.responder.Load, Stats: &g.stats, Log: g.log.Named("ntp"), Audit: ring,
			LockThreads: g.keNice > 0, NoTxLead: g.noTxLead}
		if g.growUDP {
			srv.Grow, srv.MaxWorkers = g.growUDPGroup(group), g.udpWorkers
		}
		spawn(func() error { return srv.Serve(ctx) })
	}
	for _, group := range g.smoothUDP {
		srv := &udpserve.Server{Conns: group, Responder: g.smoothResp.Load, Stats: &g.stats, Log: g.log.Named("ntp-smooth"), Audit: ring,
			NoTxLead: g.noTxLead}
		spawn(func() error { return srv.Serve(ctx) })
	}
	if g.nts != nil {
		g.nts.run(ctx, spawn)
	}
	if g.keys != nil {
		g.keys.run(ctx, spawn)
	}
	g.engMu.Lock()
	g.spawnEngine = func(e *engine.Engine) { spawn(func() error { return e.Run(ctx) }) }
	if up := g.upstream.Load(); up != nil {
		g.spawnEngine(up)
	}
	g.engMu.Unlock()
	// A reload racing the shutdown must not start an engine nobody waits for.
	context.AfterFunc(ctx, func() {
		g.engMu.Lock()
		g.spawnEngine = nil
		g.engMu.Unlock()
	})
	if g.ctlLn != nil {
		srv := g.controlServer()
		spawn(func() error { return srv.Serve(ctx, g.ctlLn) })
	}
	if g.metricsLn != nil {
		spawn(func() error { return g.serveMetrics(ctx) })
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	err := errors.Join(all...)
	if g.audit != nil {
		g.audit.close(err)
		stopShip()
	}
	return err
}

// Stats returns the NTP verdict counters.
func (g *Gateway) Stats() *udpserve.Stats { return &g.stats }

// State returns what is being served now.
func (g *Gateway) State() *ntp.ServedState { return g.state.Load() }

func (g *Gateway) closeAll() {
	if g.leapExpiry != nil {
		g.leapExpiry.Stop()
	}
	for _, group := range g.smoothUDP {
		for _, c := range group {
			c.Close()
		}
	}
	for _, group := range g.udp {
		for _, c := range group {
			c.Close()
		}
	}
	if g.nts != nil {
		g.nts.close()
	}
	if g.ctlLn != nil {
		g.ctlLn.Close()
	}
	if g.metricsLn != nil {
		g.metricsLn.Close()
	}
}

// ControlSocket is the control socket's path; empty when it is off.
func (g *Gateway) ControlSocket() string { return g.ctlPath }

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
// configuration keeps serving. Either way it is an audit record.
func (g *Gateway) Reload() error {
	_, err := g.reload()
	return err
}

// reload is Reload, returning the warnings it logged: directives it could
// not apply, and what the keys file warned about. Either way it is an audit
// record.
func (g *Gateway) reload() ([]string, error) {
	// SIGHUP and the control socket may ask at once; one reload at a time
	// keeps "validate, then swap" whole.
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	warnings, err := g.reloadLocked()
	e := audit.Event{Type: audit.TypeConfigReload, Outcome: audit.OutcomeAccepted,
		Details: map[string]string{"config": g.opts.ConfigPath}}
	if err != nil {
		e.Outcome = audit.OutcomeRejected
		e.Details["error"] = err.Error()
	}
	g.rec.Record(e)
	return warnings, err
}

func (g *Gateway) reloadLocked() ([]string, error) {
	var cfg *config.Config
	var err error
	if g.opts.ConfigPath == "" {
		cfg, err = config.Embedded()
	} else {
		cfg, err = config.Load(g.opts.ConfigPath)
	}
	if err != nil {
		return nil, err
	}
	keys, keyWarnings, err := loadKeys(cfg)
	if err != nil {
		// Report a bad rate-limit setting in the same pass as the keys file.
		_, gateErr := buildGate(cfg)
		return nil, errors.Join(err, gateErr)
	}
	tb, err := readLeap(cfg)
	if err != nil {
		return nil, err
	}
	keRate, err := keRateConfig(cfg)
	if err != nil {
		return nil, err
	}
	resp, err := g.buildResponder(cfg, keys)
	if err != nil {
		return nil, err
	}
	if g.nts != nil {
		if err := g.nts.reloadCert(); err != nil {
			return nil, fmt.Errorf("gateway: certificate: %w", err)
		}
	}
	if g.keys != nil {
		// The ring file too: a ring copied in by hand, or a shared file
		// another gateway rotated, serves from now on.
		if err := g.keys.reload(); err != nil {
			return nil, fmt.Errorf("gateway: NTS key ring: %w", err)
		}
	}
	warnings := append(keyWarnings, notApplied(g.cfg.Load(), cfg)...)
	if g.audit != nil {
		g.audit.reload(cfg.Audit)
	}
	if g.nts != nil {
		warnings = append(warnings, g.nts.setRateLimit(keRate)...)
	}
	warnings = append(warnings, g.applyLeap(cfg, tb)...)
	warnings = append(warnings, g.reloadSources(cfg, keys)...)
	for _, w := range warnings {
		g.log.Warn("reload", zap.String("warning", w))
	}
	g.cfg.Store(cfg)
	g.keySet.Store(keys)
	g.responder.Store(resp)
	g.loaded.Store(&loaded{at: g.opts.now(), warnings: warnings})
	g.log.Info("configuration reloaded")
	return warnings, nil
}

// reloadSourcesTimeout bounds the wait for the upstream loop to take new
// server lines.
const reloadSourcesTimeout = 5 * time.Second

// reloadSources hands reloaded server/pool lines, keys and selection
// settings to the upstream engine, or starts one for the first lines a
// reload adds. Settings the engine reads only at start (holdover, local,
// ntstrustedcerts, clockcontrol) are named by notApplied instead.
func (g *Gateway) reloadSources(cfg *config.Config, keys *symkey.Set) []string {
	if up := g.upstream.Load(); up != nil {
		ctx, cancel := context.WithTimeout(context.Background(), reloadSourcesTimeout)
		defer cancel()
		w, err := up.Reconfigure(ctx, engine.Reload{Sources: cfg.Sources, Keys: keys,
			MinSources: cfg.MinSources, MaxDistance: cfg.MaxDistance, AuthSelectMode: cfg.AuthSelectMode})
		if err != nil {
			return []string{fmt.Sprintf("server/pool lines not applied: %v", err)}
		}
		return w
	}
	if len(cfg.Sources) == 0 {
		return nil
	}
	g.engMu.Lock()
	defer g.engMu.Unlock()
	if g.spawnEngine == nil {
		return []string{"server/pool lines not applied: the gateway is not running"}
	}
	e, warnings, err := g.newUpstream(cfg, keys)
	if err != nil {
		return []string{fmt.Sprintf("server/pool lines not applied: %v", err)}
	}
	g.upstream.Store(e)
	g.spawnEngine(e)
	return warnings
}

// configWarnings are the parser's: lines accepted with no effect here.
func configWarnings(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Warnings))
	for _, w := range cfg.Warnings {
		out = append(out, w.String())
	}
	return out
}
