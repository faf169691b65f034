// Package kelisten is the NTS-KE TCP listener: it accepts connections, caps
// how many run at once in total and per source, and hands each one to
// nts.ServeConn in its own goroutine. Its limits are those of issue 5 (KE
// exhaustion): a flood of idle or slow connections from one place cannot
// take the slots a well-behaved client needs, and running out of file
// descriptors slows accepting down but never stops it.
package kelisten

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"timegate/nts"
)

// Defaults for Config. An NTS-KE session lasts at most nts.DefaultTimeout
// (2 s), so 256 slots serve over 100 new clients a second even if every one
// stalls to the deadline, while bounding the memory and CPU of handshakes.
// Eight per source are plenty for clients behind one NAT address yet keep a
// single attacker from holding more than 1/32 of the slots.
const (
	DefaultMaxConns          = 256
	DefaultMaxConnsPerSource = 8

	// IPv6 sources are aggregated by /64, the smallest block an end site
	// gets: a per-address cap would be void for a host with 2^64 addresses.
	ipv6SourceBits = 64

	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// Config configures a Listener. Nil fields and zero values take defaults.
type Config struct {
	TLS    *tls.Config       // required; nts.ServerTLSConfig builds one
	Server *nts.ServerConfig // required: ring, timeout, NTP server/port

	MaxConns          int // concurrent sessions in total; 0: DefaultMaxConns
	MaxConnsPerSource int // per source address (IPv6: /64); 0: default

	// Allow, when set, rate-limits new connections per source (the NTS-KE
	// table of the ratelimit package). It is called for each accepted
	// connection, before any TLS work.
	Allow func(addr netip.Addr, now time.Time) bool

	// OnFailure, when set, is told of every refused or failed session
	// (reason: a Fail* code, FailureName names it), for the audit trail's
	// per-source episodes. It runs on the session's goroutine and must not
	// block.
	OnFailure func(addr netip.Addr, reason uint8)

	Now func() time.Time // nil: time.Now
	Log *zap.Logger      // nil: no logging
}

// Listener serves NTS-KE. Create it with New.
type Listener struct {
	cfg     Config
	log     *zap.Logger
	mu      sync.Mutex
	active  int
	sources map[netip.Addr]int // sessions per source; at most MaxConns keys
	wg      sync.WaitGroup
	stats   counters
}

var errConfig = errors.New("kelisten: invalid configuration")

// New checks cfg and returns a Listener.
func New(cfg Config) (*Listener, error) {
	if cfg.TLS == nil || cfg.Server == nil || cfg.Server.Ring == nil {
		return nil, fmt.Errorf("%w: TLS config, server config and key ring are required", errConfig)
	}
	if cfg.TLS.MinVersion < tls.VersionTLS13 {
		return nil, fmt.Errorf("%w: TLS MinVersion must be 1.3 (RFC 8915 §3)", errConfig)
	}
	if err := cfg.Server.Options.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxConns < 0 || cfg.MaxConnsPerSource < 0 {
		return nil, fmt.Errorf("%w: negative connection cap", errConfig)
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerSource == 0 {
		cfg.MaxConnsPerSource = DefaultMaxConnsPerSource
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	return &Listener{cfg: cfg, log: log, sources: make(map[netip.Addr]int)}, nil
}

// Listen opens a TCP listener on addr. With an empty host (":4460") the
// socket is dual-stack: one listener for IPv4 and IPv6.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

// Serve accepts on ln until ctx is done, then closes ln and waits for the
// running sessions (each bounded by the server timeout). It returns nil on
// shutdown, or the error that made ln unusable.
func (l *Listener) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer l.wg.Wait()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			delay = 0
			l.admit(c)
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		// EMFILE, ENFILE, ECONNABORTED...: back off and keep going; the
		// sessions that end free descriptors.
		l.stats.acceptErrors.Add(1)
		delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
		l.log.Warn("NTS-KE accept failed; backing off", zap.Error(err), zap.Duration("delay", delay))
		if !sleep(ctx, delay) {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// admit applies the rate limit and the caps, then starts the session.
func (l *Listener) admit(c net.Conn) {
	l.stats.accepted.Add(1)
	addr := remoteAddr(c)
	if l.cfg.Allow != nil && !l.cfg.Allow(addr, l.now()) {
		l.stats.refusedRate.Add(1)
		l.failed(addr, FailRate)
		refuse(c)
		return
	}
	key := sourceKey(addr)
	if ok, why := l.acquire(key); !ok {
		l.failed(addr, why)
		refuse(c)
		return
	}
	l.wg.Add(1)
	go l.serve(c, key)
}

func (l *Listener) serve(c net.Conn, key netip.Addr) {
	defer l.wg.Done()
	defer l.release(key)
	start := l.now()
	err := nts.ServeConn(tls.Server(c, l.cfg.TLS), l.cfg.Server)
	if why := l.stats.record(err, l.now().Sub(start)); why != FailNone {
		l.failed(remoteAddr(c), why)
	}
	if err != nil {
		l.log.Debug("NTS-KE session", zap.Stringer("client", c.RemoteAddr()), zap.Error(err))
	}
}

func (l *Listener) acquire(key netip.Addr) (bool, uint8) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active >= l.cfg.MaxConns {
		l.stats.refusedTotalCap.Add(1)
		return false, FailTotalCap
	}
	if l.sources[key] >= l.cfg.MaxConnsPerSource {
		l.stats.refusedSourceCap.Add(1)
		return false, FailSourceCap
	}
	l.active++
	l.sources[key]++
	return true, FailNone
}

func (l *Listener) failed(addr netip.Addr, why uint8) {
	if l.cfg.OnFailure != nil {
		l.cfg.OnFailure(addr, why)
	}
}

func (l *Listener) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active--
	if l.sources[key]--; l.sources[key] == 0 {
		delete(l.sources, key)
	}
}

// refuse drops a connection at once, with a reset rather than a FIN so that
// a refused flood leaves no TIME_WAIT state behind on our side.
func refuse(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// sourceKey is the unit of the per-source cap: the IPv4 address, or the
// IPv6 /64 (IPv4-mapped addresses count as IPv4).
func sourceKey(a netip.Addr) netip.Addr {
	if a = a.Unmap(); a.Is6() {
		p, _ := a.Prefix(ipv6SourceBits)
		return p.Addr()
	}
	return a
}

func (l *Listener) now() time.Time {
	if l.cfg.Now != nil {
		return l.cfg.Now()
	}
	return time.Now()
}
