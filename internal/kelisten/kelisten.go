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
// single attacker from holding more than 1/32 of the slots; 32 per block
// (IPv4 /24, IPv6 /48) keep one network that owns many addresses (a /24,
// or the 2^16 /64s of one IPv6 site) to 1/8 of them.
const (
	DefaultMaxConns          = 256
	DefaultMaxConnsPerSource = 8
	DefaultMaxConnsPerBlock  = 32

	// Sources are aggregated twice. IPv6 by /64, the smallest block an end
	// site gets (a per-address cap would be void for a host with 2^64
	// addresses), and by /48, the usual site allocation, whose 65536 /64s
	// would otherwise each get their own share. IPv4 by address and by /24.
	ipv6SourceBits = 64
	ipv6BlockBits  = 48
	ipv4BlockBits  = 24

	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// Config configures a Listener. Nil fields and zero values take defaults.
type Config struct {
	TLS    *tls.Config       // required; nts.ServerTLSConfig builds one
	Server *nts.ServerConfig // required: ring, timeout, NTP server/port

	MaxConns          int // concurrent sessions in total; 0: DefaultMaxConns
	MaxConnsPerSource int // per source address (IPv6: /64); 0: default
	MaxConnsPerBlock  int // per IPv4 /24 or IPv6 /48; 0: default

	// Allow, when set, rate-limits new connections per source (the NTS-KE
	// table of the ratelimit package). It is called for each accepted
	// connection the caps let in, before any TLS work, so that a
	// connection refused by a cap does not spend the source's budget.
	Allow func(addr netip.Addr, now time.Time) bool

	// OnFailure, when set, is told of every refused or failed session
	// (reason: a Fail* code, FailureName names it), for the audit trail's
	// per-source episodes. It runs on the session's goroutine and must not
	// block.
	OnFailure func(addr netip.Addr, reason uint8)

	// Nice, when positive, runs sessions on OS threads of their own at
	// that nice value (Linux; 1..19; see sessionPool): the TLS handshakes'
	// public-key work then yields the CPU to threads of normal priority,
	// the NTP workers (udpserve.Server.LockThreads), whenever both want it.
	Nice int

	// HandshakeSlots, when positive, bounds how many sessions do the
	// handshake's public-key work at once: from the moment the ClientHello
	// has been read (key exchange, certificate signature) to the first
	// write of the server's flight, which Go's TLS buffers until that work
	// is done (see gate). No client I/O falls inside, so a slow client
	// cannot hold a slot. With Nice it keeps the Go scheduler from giving
	// every P to handshakes: set it to the Ps the NTP workers leave over,
	// and a woken worker always finds one.
	HandshakeSlots int

	Now func() time.Time // nil: time.Now
	Log *zap.Logger      // nil: no logging
}

// Listener serves NTS-KE. Create it with New.
type Listener struct {
	cfg   Config
	log   *zap.Logger
	slots slots
	wg    sync.WaitGroup
	stats counters
	pool  *sessionPool  // nil: a goroutine per session (Config.Nice 0)
	gate  chan struct{} // Config.HandshakeSlots tokens; nil: no bound
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
	if cfg.Nice < 0 || cfg.Nice > 19 {
		return nil, fmt.Errorf("%w: nice must be 0..19, got %d", errConfig, cfg.Nice)
	}
	if cfg.HandshakeSlots < 0 {
		return nil, fmt.Errorf("%w: negative handshake slots", errConfig)
	}
	if cfg.MaxConns < 0 || cfg.MaxConnsPerSource < 0 || cfg.MaxConnsPerBlock < 0 {
		return nil, fmt.Errorf("%w: negative connection cap", errConfig)
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerSource == 0 {
		cfg.MaxConnsPerSource = DefaultMaxConnsPerSource
	}
	if cfg.MaxConnsPerBlock == 0 {
		cfg.MaxConnsPerBlock = DefaultMaxConnsPerBlock
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	l := &Listener{cfg: cfg, log: log}
	if cfg.Nice > 0 {
		l.pool = newSessionPool(cfg.Nice)
	}
	if cfg.HandshakeSlots > 0 {
		l.gate = make(chan struct{}, cfg.HandshakeSlots)
		l.cfg.TLS = gatedTLS(cfg.TLS)
	}
	l.slots.init(cfg.MaxConns, cfg.MaxConnsPerSource, cfg.MaxConnsPerBlock)
	return l, nil
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
	if l.pool != nil {
		defer l.pool.stop() // after the sessions, below
	}
	defer l.wg.Wait()
	var delay time.Duration
	for {
		// A slot first, then accept: when every slot is busy, new
		// connections wait in the kernel's accept queue (and their clients
		// keep waiting) instead of being accepted only to be reset.
		held := false
		switch l.waitSlot(ctx, false) {
		case slotStopped:
			return nil
		case slotEvictable:
			held = true
		}
		c, err := ln.Accept()
		if err == nil {
			delay = 0
			if held && l.waitSlot(ctx, true) == slotStopped {
				c.Close()
				return nil
			}
			l.admit(c)
			continue
		}
		if !held {
			l.slots.unreserve()
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

// admit applies the per-source caps, then the rate limit, then starts the
// session in the slot reserved for it.
func (l *Listener) admit(c net.Conn) {
	l.stats.accepted.Add(1)
	addr := remoteAddr(c)
	s := &session{conn: c, addr: addr, host: sourceKey(addr), block: blockKey(addr), start: l.now()}
	ok, victim := l.slots.attach(s, &l.stats, s.start)
	if !ok {
		l.slots.unreserve()
		l.failed(addr, FailSourceCap)
		refuse(c)
		return
	}
	if victim != nil {
		victim.conn.Close() // its handshake fails now and releases its slot
	}
	if l.cfg.Allow != nil && !l.cfg.Allow(addr, l.now()) {
		l.stats.refusedRate.Add(1)
		l.failed(addr, FailRate)
		l.slots.release(s)
		refuse(c)
		return
	}
	l.wg.Add(1)
	if l.pool != nil {
		l.pool.run(s, l.serve)
		return
	}
	go l.serve(s)
}

// serve runs one session: the TLS handshake under the deadline the load
// allows, then nts.ServeConn for the rest of the session's time.
func (l *Listener) serve(s *session) {
	defer l.wg.Done()
	timeout := l.cfg.Server.Timeout
	if timeout == 0 {
		timeout = nts.DefaultTimeout
	}
	conn := s.conn
	var gc *gatedConn
	if l.gate != nil {
		gc = &gatedConn{Conn: s.conn, gate: l.gate, deadline: s.start.Add(timeout)}
		conn = gc
	}
	tc := tls.Server(conn, l.cfg.TLS)
	err := l.handshake(tc, s, timeout)
	if gc != nil {
		gc.release() // a handshake that failed before writing
	}
	l.slots.handshaken(s)
	if err == nil {
		sc := *l.cfg.Server
		// One budget for the whole session, as ServeConn promises.
		sc.Timeout = max(timeout-l.now().Sub(s.start), time.Millisecond)
		if l.slots.pressure() {
			sc.Timeout = min(sc.Timeout, pressureRequestTimeout)
		}
		err = nts.ServeConn(tc, &sc)
	} else {
		tc.Close()
	}
	evicted := l.slots.release(s)
	if evicted != FailNone {
		l.failed(s.addr, evicted) // counted when it was evicted
	} else if why := l.stats.record(err, l.now().Sub(s.start)); why != FailNone {
		l.failed(s.addr, why)
	}
	if err != nil {
		l.log.Debug("NTS-KE session", zap.Stringer("client", s.conn.RemoteAddr()), zap.Bool("evicted", evicted != FailNone), zap.Error(err))
	}
}

// handshake completes the TLS handshake, within pressureHandshakeTimeout
// when the session started under pressure (see slots.pressure).
func (l *Listener) handshake(tc *tls.Conn, s *session, timeout time.Duration) error {
	if s.pressed {
		timeout = min(timeout, pressureHandshakeTimeout)
	}
	if err := tc.SetDeadline(s.start.Add(timeout)); err != nil {
		return err
	}
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("%w: %w", nts.ErrHandshake, err)
	}
	return nil
}

func (l *Listener) failed(addr netip.Addr, why uint8) {
	if l.cfg.OnFailure != nil {
		l.cfg.OnFailure(addr, why)
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

// blockKey is the unit of the per-block cap: the IPv4 /24 or the IPv6 /48.
func blockKey(a netip.Addr) netip.Addr {
	bits := ipv4BlockBits
	if a = a.Unmap(); a.Is6() {
		bits = ipv6BlockBits
	}
	p, _ := a.Prefix(bits)
	return p.Addr()
}

func (l *Listener) now() time.Time {
	if l.cfg.Now != nil {
		return l.cfg.Now()
	}
	return time.Now()
}
