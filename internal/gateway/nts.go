package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
	"timegate/certs"
	iaudit "timegate/internal/audit"
	"timegate/internal/config"
	"timegate/internal/kelisten"
	"timegate/internal/keproc"
	"timegate/nts"
	"timegate/ratelimit"
)

// ntsService is the NTS-KE front end: certificate, key ring and either
// helper processes (ntsprocesses, the default) or a listener in this
// process (ntsprocesses 0).
type ntsService struct {
	log   *zap.Logger
	rec   iaudit.Recorder
	store *certs.Store

	// In this process: the listener, its sockets and its rate table.
	listener *kelisten.Listener
	sockets  []net.Listener
	keRate   ratelimit.Live // ntsratelimit in this process (a reload sets it)

	// In helper processes: their supervisor and the sockets it passes on.
	helpers     *keproc.Supervisor
	socketFiles []*os.File

	certFile, keyFile string
	certAt            atomic.Int64 // UnixNano of the last certificate (re)load
}

// certLoaded is when the certificate in use was loaded.
func (s *ntsService) certLoaded() time.Time { return time.Unix(0, s.certAt.Load()) }

// certWatchInterval is how often certificate files are checked for change;
// SIGHUP reloads at once.
const certWatchInterval = 10 * time.Second

func (g *Gateway) openNTS(ctx context.Context, cfg *config.Config) (*ntsService, error) {
	s := &ntsService{log: g.log.Named("nts"), rec: g.rec}
	store, err := g.certStore(cfg, s)
	if err != nil {
		g.rec.Record(certAuditEvent(audit.TypeCertLoad, audit.OutcomeFailed, certs.Info{}, err))
		return nil, err
	}
	s.store = store
	s.certAt.Store(g.opts.now().UnixNano())
	info := store.Info()
	g.rec.Record(certAuditEvent(audit.TypeCertLoad, audit.OutcomeOK, info, nil))
	s.log.Info("NTS-KE certificate", zap.Strings("names", info.SANs), zap.Time("not_after", info.NotAfter),
		zap.Int("days_to_expiry", info.DaysToExpiry), zap.String("sha256", info.FingerprintString()))
	var onFailure func(netip.Addr, uint8)
	if g.audit != nil {
		ring := g.audit.ring
		onFailure = func(a netip.Addr, why uint8) { ring.Offer(a, iaudit.KindNTSKE, why) }
	}
	if cfg.NTSProcesses > 0 {
		if err := g.openHelpers(ctx, cfg, s, onFailure); err != nil {
			s.close()
			return nil, err
		}
		return s, nil
	}
	rc, err := keRateConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.keRate.Set(rc); err != nil {
		return nil, fmt.Errorf("%w: %s: ntsratelimit: %v", config.ErrConfig, cfg.Positions["ntsratelimit"], err)
	}
	s.listener, err = kelisten.New(kelisten.Config{
		TLS: nts.ServerTLSConfig(store.GetCertificate),
		Server: &nts.ServerConfig{
			Ring:    g.keys.Ring,
			Now:     g.opts.Now,
			Options: negotiateOptions(cfg),
		},
		Allow:          s.allowKE,
		MaxConns:       cfg.MaxNTSConnections,
		OnFailure:      onFailure,
		Nice:           cfg.NTSKENice,
		HandshakeSlots: g.handshakeSlots(cfg),
		Now:            g.opts.Now,
		Log:            s.log.Named("ke"),
	})
	if err != nil {
		return nil, err
	}
	for _, addr := range listenAddrs(cfg.BindAddresses, cfg.NTSPort) {
		ln, err := kelisten.Listen(ctx, addr)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("gateway: NTS-KE port: %w", err)
		}
		s.sockets = append(s.sockets, ln)
		s.log.Info("serving NTS-KE", zap.Stringer("addr", ln.Addr()))
	}
	return s, nil
}

// openHelpers binds the NTS-KE sockets and prepares the helper processes
// that will serve them. Run starts them, after DropPrivileges: they run as
// the user the daemon dropped to, never as the root it started as.
func (g *Gateway) openHelpers(ctx context.Context, cfg *config.Config, s *ntsService, onFailure func(netip.Addr, uint8)) error {
	rc, err := keRateConfig(cfg)
	if err != nil {
		return err
	}
	for _, addr := range listenAddrs(cfg.BindAddresses, cfg.NTSPort) {
		ln, err := kelisten.Listen(ctx, addr)
		if err != nil {
			return fmt.Errorf("gateway: NTS-KE port: %w", err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close() // f keeps the socket bound and listening
		if err != nil {
			return fmt.Errorf("gateway: NTS-KE port: %w", err)
		}
		s.socketFiles = append(s.socketFiles, f)
		s.log.Info("serving NTS-KE", zap.Stringer("addr", ln.Addr()), zap.Int("processes", cfg.NTSProcesses))
	}
	total := cfg.MaxNTSConnections
	if total == 0 {
		total = kelisten.DefaultMaxConns
	}
	kc := keproc.Config{
		Processes: cfg.NTSProcesses,
		Listeners: s.socketFiles,
		Child: keproc.ChildConfig{
			Options: negotiateOptions(cfg),
			// maxntsconnections bounds all helpers together.
			MaxConns:  max(1, (total+cfg.NTSProcesses-1)/cfg.NTSProcesses),
			RateLimit: rc,
			Nice:      cfg.NTSKENice,
			Idle:      cfg.NTSKEIdle,
			LogLevel:  g.opts.LogLevel,
			LogJSON:   g.opts.LogJSON,
		},
		Cert:        func() *tls.Certificate { c, _ := s.store.GetCertificate(nil); return c },
		Ring:        g.keys.Ring,
		RingChanged: g.keys.changed,
		Path:        g.opts.HelperPath,
		Log:         s.log.Named("helpers"),
	}
	if onFailure != nil {
		kc.OnFailure = func(f keproc.Failure) { onFailure(f.Addr, f.Reason) }
	}
	kc.OnExit = s.helperExited
	s.helpers, err = keproc.New(kc)
	return err
}

// handshakeSlots is how many NTS-KE handshakes may do public-key work at
// once with `ntskenice`: the Ps the NTP workers leave over (openUDP raised
// GOMAXPROCS above them), so that a worker woken while handshakes run
// always finds a P and the kernel, not the Go scheduler, decides between
// it and the lower-priority handshake threads. Without ntskenice there is
// no bound.
func (g *Gateway) handshakeSlots(cfg *config.Config) int {
	if cfg.NTSKENice == 0 {
		return 0
	}
	workers := 0
	for _, groups := range [][][]*net.UDPConn{g.udp, g.smoothUDP} {
		for _, group := range groups {
			workers += len(group)
		}
	}
	return max(1, runtime.GOMAXPROCS(0)-workers)
}

// negotiateOptions is what NTS-KE replies announce: the NTP host
// (`ntsntpserver`, none = this host) and its port, which is this host's own
// `port` unless `ntsntpserver HOST port N` names the NTP hosts' port (a KE
// front end with `port 0`, say).
func negotiateOptions(cfg *config.Config) nts.NegotiateOptions {
	port := cfg.Port
	if cfg.NTSNTPPort != 0 {
		port = cfg.NTSNTPPort
	}
	return nts.NegotiateOptions{NTPServer: cfg.NTSNTPServer, NTPPort: uint16(port), AEADs: cfg.NTSAEADs}
}

// certStore loads the configured certificate, or on the embedded-default
// path generates a self-signed one so that a first run works out of the box.
func (g *Gateway) certStore(cfg *config.Config, s *ntsService) (*certs.Store, error) {
	certFile, keyFile := cfg.NTSServerCert, cfg.NTSServerKey
	if certFile == "" {
		hosts := certs.DefaultHosts()
		if h, err := os.Hostname(); err == nil && h != "" {
			hosts = append(hosts, h)
		}
		if err := os.MkdirAll(g.opts.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("gateway: state directory: %w", err)
		}
		var generated bool
		var err error
		certFile, keyFile, generated, err = certs.EnsureSelfSigned(g.opts.StateDir, hosts, g.opts.now(), rand.Reader, trustedOwners(cfg)...)
		if err != nil {
			return nil, fmt.Errorf("gateway: self-signed certificate: %w", err)
		}
		g.log.Warn("NO ntsservercert CONFIGURED: serving NTS-KE with a SELF-SIGNED certificate; "+
			"clients must be told to trust it explicitly (chrony: ntstrustedcerts FILE; gatectl query -nts -ca FILE)",
			zap.String("certificate", certFile), zap.Bool("generated_now", generated))
	}
	s.certFile, s.keyFile = certFile, keyFile
	store, err := certs.NewStore(certFile, keyFile, certs.Options{Now: g.opts.Now, KeyOwners: trustedOwners(cfg)})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: ntsservercert/ntsserverkey: %v", config.ErrConfig, cfg.Positions["ntsservercert"], err)
	}
	return store, nil
}

// keRateConfig is the per-source NTS-KE connection limit
// (`ntsratelimit`), checked, or nil when it is off.
func keRateConfig(cfg *config.Config) (*ratelimit.Config, error) {
	if !cfg.NTSRateLimit.Enabled {
		return nil, nil
	}
	rc := rateConfig(cfg.NTSRateLimit, cfg.ClientLogLimit, false)
	rc.KoD = false // NTS-KE has no kiss
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: ntsratelimit: %v", config.ErrConfig, cfg.Positions["ntsratelimit"], err)
	}
	return &rc, nil
}

// allowKE is the per-source NTS-KE connection limit (`ntsratelimit`) in
// this process. Only a pass admits: the table's 1-in-2^leak answers exist
// so that a spoofer cannot silence the UDP address it forges, but a TCP
// peer has completed a handshake and cannot be spoofed, so a leak would
// only let a flooding source through (a campaign completed 102 handshakes
// in 5 s from one address). The helpers (keproc) decide the same way.
func (s *ntsService) allowKE(a netip.Addr, now time.Time) bool {
	return s.keRate.Allow(a, now) == ratelimit.Pass
}

// setRateLimit puts a reloaded `ntsratelimit` (rc, checked by
// keRateConfig; nil: off) in force, in this process or in every helper;
// a table whose settings did not change keeps what it knows of each
// source. A helper that did not take it (it is restarting, say) gets it
// when it starts, and the warning says so.
func (s *ntsService) setRateLimit(rc *ratelimit.Config) []string {
	if s.helpers != nil {
		if err := s.helpers.SetRateLimit(rc); err != nil {
			return []string{fmt.Sprintf("ntsratelimit: not yet in force in every NTS-KE helper (each takes it when it next starts): %v", err)}
		}
		return nil
	}
	if err := s.keRate.Set(rc); err != nil {
		return []string{fmt.Sprintf("ntsratelimit: not applied: %v", err)}
	}
	return nil
}

func listenAddrs(bind []netip.Addr, port int) []string {
	if len(bind) == 0 {
		return []string{net.JoinHostPort("", strconv.Itoa(port))}
	}
	out := make([]string, 0, len(bind))
	for _, a := range bind {
		out = append(out, net.JoinHostPort(a.String(), strconv.Itoa(port)))
	}
	return out
}

// run serves until ctx ends: the listeners, key rotation and certificate
// watching.
func (s *ntsService) run(ctx context.Context, spawn func(func() error)) {
	for _, ln := range s.sockets {
		spawn(func() error { return s.listener.Serve(ctx, ln) })
	}
	if s.helpers != nil {
		spawn(func() error { return s.helpers.Run(ctx) })
	}
	spawn(func() error {
		s.store.Watch(ctx, certWatchInterval, s.certEvent)
		return nil
	})
	spawn(func() error {
		s.warnExpiry(ctx)
		return nil
	})
}

// Certificate expiry warnings: an expired certificate fails every NTS-KE,
// so the operator hears about it daily from a month ahead, loudly in the
// last week.
const (
	expiryCheckInterval = 12 * time.Hour
	expiryWarnDays      = 30
	expiryErrorDays     = 7
)

func (s *ntsService) warnExpiry(ctx context.Context) {
	t := time.NewTicker(expiryCheckInterval)
	defer t.Stop()
	for {
		s.logExpiry(s.store.Info())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *ntsService) logExpiry(info certs.Info) {
	fields := []zap.Field{zap.Int("days_to_expiry", info.DaysToExpiry), zap.Time("not_after", info.NotAfter), zap.Strings("names", info.SANs)}
	switch {
	case info.DaysToExpiry < expiryErrorDays:
		s.log.Error("NTS-KE certificate expires within a week (or has expired): replace it", fields...)
	case info.DaysToExpiry < expiryWarnDays:
		s.log.Warn("NTS-KE certificate expires within a month", fields...)
	default:
		return
	}
	s.recorder().Record(certAuditEvent(audit.TypeCertExpiry, audit.OutcomeWarning, info, nil))
}

func (s *ntsService) certEvent(e certs.Event) {
	switch {
	case e.Err != nil:
		s.log.Error("new certificate refused; still serving the previous one", zap.Error(e.Err))
		s.recorder().Record(certAuditEvent(audit.TypeCertReload, audit.OutcomeRejected, e.Info, e.Err))
	case e.Changed:
		if s.helpers != nil {
			// Before the event is recorded as accepted: a helper
			// that refuses it keeps serving the previous pair.
			if err := s.helpers.PushCert(); err != nil {
				s.log.Error("NTS-KE helpers did not all take the new certificate", zap.Error(err))
			}
		}
		s.certAt.Store(time.Now().UnixNano())
		s.recorder().Record(certAuditEvent(audit.TypeCertReload, audit.OutcomeAccepted, e.Info, nil))
		s.log.Info("certificate reloaded", zap.Strings("names", e.Info.SANs),
			zap.Int("days_to_expiry", e.Info.DaysToExpiry), zap.String("sha256", e.Info.FingerprintString()))
	}
}

// reloadCert re-reads the certificate files now (SIGHUP).
func (s *ntsService) reloadCert() error {
	changed, err := s.store.Reload()
	if err == nil {
		s.certEvent(certs.Event{Changed: changed, Info: s.store.Info()})
	}
	return err
}

// keReasonName names kelisten's failure codes in audit episodes.
func keReasonName(code uint8) string { return kelisten.FailureName(code) }

func (s *ntsService) close() {
	for _, ln := range s.sockets {
		ln.Close()
	}
	for _, f := range s.socketFiles {
		f.Close()
	}
}

// helperExited records a helper process that ended while serving: it
// parses hostile TLS, so a crash may be an attack that got somewhere.
func (s *ntsService) helperExited(helper, pid int, err error) {
	why := "unknown"
	if err != nil {
		why = err.Error()
	}
	s.recorder().Record(audit.Event{Type: audit.TypeNTSKEHelperExit, Outcome: audit.OutcomeFailed,
		Details: map[string]string{"helper": strconv.Itoa(helper), "pid": strconv.Itoa(pid), "error": why}})
}

// stats returns the NTS-KE counters, the ntsratelimit table's (nil when
// off) and how many failures the helpers could not pass on to the audit
// trail, from the helpers or the listener in this process.
func (s *ntsService) stats() (kelisten.Stats, *ratelimit.Stats, uint64) {
	if s.helpers != nil {
		st := s.helpers.Stats()
		return st.KE, st.Rate, st.FailuresDropped
	}
	var rate *ratelimit.Stats
	if t := s.keRate.Table(); t != nil {
		ts := t.Stats()
		rate = &ts
	}
	return s.listener.Stats(), rate, 0
}

// ringChanged hands a new key ring to the helpers and returns once they
// have it (the Supervisor also follows keyService.changed by itself).
func (s *ntsService) ringChanged() {
	if s.helpers == nil {
		return
	}
	if err := s.helpers.PushRing(); err != nil {
		s.log.Error("NTS-KE helpers did not all take the new key ring", zap.Error(err))
	}
}

// recorder is where the NTS front end reports audit events (discarding
// when the service was built without one, as in tests).
func (s *ntsService) recorder() iaudit.Recorder {
	if s.rec == nil {
		return iaudit.Nop{}
	}
	return s.rec
}
