package keproc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"timegate/internal/kelisten"
	"timegate/internal/logging"
	"timegate/internal/privdrop"
	"timegate/nts"
	"timegate/ratelimit"
)

// childEnv marks a process started as a helper. It only selects the code
// path: a helper still refuses to run unless descriptor 3 is a
// SOCK_SEQPACKET socket whose first message is a configuration.
const childEnv = "TIMEGATE_NTSKE_HELPER"

// Descriptors a helper inherits: the control socket, then the listeners.
const (
	controlFD       = 3
	firstListenerFD = 4
)

// IsHelper reports whether this process was started as an NTS-KE helper;
// main (and TestMain of packages that start helpers) then call HelperMain
// before anything else.
func IsHelper() bool { return os.Getenv(childEnv) == "1" }

// ChildConfig is what a helper is told when it starts.
type ChildConfig struct {
	Listeners int                  // listening sockets, descriptors 4...
	Options   nts.NegotiateOptions // where the NTP service is
	MaxConns  int                  // maxntsconnections for this helper; 0: default
	RateLimit *ratelimit.Config    // ntsratelimit; nil: off
	Nice      int                  // ntskenice N: the helper's nice value; 0: unchanged
	Idle      bool                 // ntskenice idle: SCHED_IDLE (takes precedence over Nice)
	LogLevel  string               // zap level name; "": info
	LogJSON   bool                 // JSON log lines instead of console text
	Index     int                  // which helper, for its log lines
}

// Stats is what a helper reports.
type Stats struct {
	KE   kelisten.Stats
	Rate *ratelimit.Stats // nil without ntsratelimit
	// FailuresDropped counts failures the audit trail did not get because
	// the parent read them slower than they came.
	FailuresDropped uint64
}

// HelperMain runs an NTS-KE helper until its parent closes the control
// socket, and returns the exit status.
func HelperMain() int {
	os.Unsetenv(childEnv) // nothing the helper starts is one
	// Before anything else: a helper needs no capability, and a non-root
	// daemon's ambient ones (systemd's AmbientCapabilities=) would
	// otherwise have come along across execve.
	capsErr := privdrop.ClearCapabilities()
	if capsErr != nil && !errors.Is(capsErr, privdrop.ErrCgo) {
		fmt.Fprintln(os.Stderr, "timegate NTS-KE helper: cannot drop capabilities:", capsErr)
		return 1
	}
	// The parent decides when the helper stops, by closing the control
	// socket, so that a graceful stop lets running sessions finish and is
	// not taken for a crash: a terminal's ^C reaches the whole process
	// group, and `systemctl stop` sends SIGTERM to the whole cgroup, the
	// helper included. A parent killed outright takes it along anyway
	// (PR_SET_PDEATHSIG, SIGKILL).
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM)
	nameProcess() // cosmetic: a helper left named "exe" serves as well
	if err := runHelper(capsErr); err != nil {
		fmt.Fprintln(os.Stderr, "timegate NTS-KE helper:", err)
		return 1
	}
	return 0
}

// helper is the state of a running helper process.
type helper struct {
	conn *net.UnixConn
	wmu  sync.Mutex // one message at a time on conn
	log  *zap.Logger

	cert atomic.Pointer[tls.Certificate]
	ring atomic.Pointer[nts.KeyRing]
	// ringSet: the parent's ring message has been applied (its ring may
	// be nil: a KE host that has none yet). Only the control loop's
	// goroutine touches it.
	ringSet bool

	// rate is ntsratelimit, as the configuration set it and the parent
	// has changed it since (msgRate).
	rate ratelimit.Live

	failures chan Failure
	dropped  atomic.Uint64
}

// runHelper serves; capsErr, when set, says why a cgo build kept the
// capabilities it was started with (logged once the logger exists).
func runHelper(capsErr error) error {
	f := os.NewFile(controlFD, "ntske-control")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok || uc.LocalAddr().Network() != "unixpacket" {
		c.Close()
		return errors.New("descriptor 3 is not the parent's SOCK_SEQPACKET control socket: a helper is started by timegate itself")
	}
	h := &helper{conn: uc, failures: make(chan Failure, 4096)}
	defer uc.Close()
	buf := make([]byte, maxMessage+1)
	cfg, err := h.readConfig(buf)
	if err != nil {
		return err
	}
	if h.log, err = logging.New(logLevel(cfg.LogLevel), cfg.LogJSON, os.Stderr); err != nil {
		return err
	}
	h.log = h.log.Named(fmt.Sprintf("nts.ke-helper-%d", cfg.Index))
	defer h.log.Sync()
	if capsErr != nil {
		h.log.Warn("NTS-KE helper keeps the capabilities it was started with", zap.Error(capsErr))
	}
	switch {
	case cfg.Idle:
		if err := idleProcess(); err != nil {
			h.log.Warn("ntskenice idle: cannot put the helper in SCHED_IDLE; it runs at normal priority "+
				"(a seccomp filter without sched_setscheduler?)", zap.Error(err))
		}
	case cfg.Nice > 0:
		if err := niceProcess(cfg.Nice); err != nil {
			h.log.Warn("ntskenice: cannot lower the helper's priority", zap.Error(err))
		}
	}
	lns, err := inheritedListeners(cfg.Listeners)
	if err != nil {
		return err
	}
	l, err := h.listener(cfg)
	if err != nil {
		return err
	}
	if err := h.ack(nil); err != nil {
		return err
	}
	// The certificate and the ring come next, before any connection is
	// accepted: a session never finds either missing. Waiting for the
	// certificate alone let a helper started again after a crash take a
	// connection before the ring message was read, and answer it with an
	// internal-error record (tests/ TestKEHelperRestartAudited saw it).
	for h.cert.Load() == nil || !h.ringSet {
		typ, p, err := h.read(buf)
		if err != nil {
			return err
		}
		if err := h.handle(typ, p, l); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Go(func() {
			if err := l.Serve(ctx, ln); err != nil {
				h.log.Error("NTS-KE listener failed", zap.Error(err))
			}
		})
	}
	go h.sendFailures(ctx)
	h.log.Debug("serving NTS-KE", zap.Int("listeners", len(lns)), zap.Int("pid", os.Getpid()))
	err = h.serveControl(buf, l)
	cancel()
	wg.Wait() // running sessions end within their deadline
	if errors.Is(err, io.EOF) {
		return nil // the parent stopped us
	}
	return err
}

func logLevel(s string) string {
	if s == "" {
		return "info"
	}
	return s
}

func (h *helper) readConfig(buf []byte) (ChildConfig, error) {
	var cfg ChildConfig
	typ, p, err := h.read(buf)
	if err != nil {
		return cfg, err
	}
	if typ != msgConfig {
		return cfg, fmt.Errorf("%w: first message of type %q, not a configuration", errMessage, typ)
	}
	if err := json.Unmarshal(p, &cfg); err != nil {
		return cfg, fmt.Errorf("%w: configuration: %v", errMessage, err)
	}
	if cfg.Listeners < 1 || cfg.Listeners > 64 {
		return cfg, fmt.Errorf("%w: %d listeners", errMessage, cfg.Listeners)
	}
	return cfg, nil
}

func inheritedListeners(n int) ([]net.Listener, error) {
	lns := make([]net.Listener, 0, n)
	for i := range n {
		f := os.NewFile(uintptr(firstListenerFD+i), "ntske-listener")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("listener %d: %w", i, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func (h *helper) listener(cfg ChildConfig) (*kelisten.Listener, error) {
	if err := h.rate.Set(cfg.RateLimit); err != nil {
		return nil, err
	}
	l, err := kelisten.New(kelisten.Config{
		TLS: nts.ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return h.cert.Load(), nil }),
		Server: &nts.ServerConfig{
			Ring:    h.ring.Load,
			Options: cfg.Options,
		},
		Allow:     h.allow,
		MaxConns:  cfg.MaxConns,
		OnFailure: h.failed,
		Log:       h.log.Named("ke"),
	})
	return l, err
}

// allow admits a connection only when the rate table passes it: no leak
// over TCP (see the gateway's allowKE, which decides the same way).
func (h *helper) allow(a netip.Addr, now time.Time) bool {
	return h.rate.Allow(a, now) == ratelimit.Pass
}

// failed queues a failure for the parent's audit trail without ever
// blocking a session: when the parent falls behind, the failure is counted
// as dropped (Stats.FailuresDropped) instead.
func (h *helper) failed(a netip.Addr, why uint8) {
	select {
	case h.failures <- Failure{Addr: a, Reason: why}:
	default:
		h.dropped.Add(1)
	}
}

// sendFailures batches queued failures into messages.
func (h *helper) sendFailures(ctx context.Context) {
	b := make([]byte, 0, 1+maxFailuresPerMessage*failureLen)
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-h.failures:
			b = appendFailure(append(b[:0], msgFailures), f)
		}
	drain:
		for n := 1; n < maxFailuresPerMessage; n++ {
			select {
			case f := <-h.failures:
				b = appendFailure(b, f)
			default:
				break drain
			}
		}
		if err := h.write(b); err != nil {
			return // the control loop sees the same error and stops
		}
	}
}

// serveControl answers the parent until it closes the socket (io.EOF).
func (h *helper) serveControl(buf []byte, l *kelisten.Listener) error {
	for {
		typ, p, err := h.read(buf)
		if err != nil {
			return err
		}
		if err := h.handle(typ, p, l); err != nil {
			return err
		}
	}
}

// handle applies one message from the parent. An error ends the helper:
// the parent restarts it.
func (h *helper) handle(typ byte, p []byte, l *kelisten.Listener) error {
	switch typ {
	case msgCert:
		chain, key, err := parseCert(p)
		if err != nil {
			return err
		}
		cert, err := tls.X509KeyPair(chain, key)
		clear(p)
		if err != nil {
			return h.ack(err)
		}
		h.cert.Store(&cert)
		return h.ack(nil)
	case msgRing:
		var ring *nts.KeyRing
		if len(p) > 0 {
			r, err := nts.UnmarshalHandover(p)
			clear(p)
			if err != nil {
				return h.ack(err)
			}
			ring = r
		}
		h.ring.Store(ring)
		h.ringSet = true
		return h.ack(nil)
	case msgRate:
		var rc *ratelimit.Config
		if err := json.Unmarshal(p, &rc); err != nil {
			return h.ack(fmt.Errorf("ntsratelimit: %w", err))
		}
		return h.ack(h.rate.Set(rc))
	case msgStatsReq:
		st := Stats{KE: l.Stats(), FailuresDropped: h.dropped.Load()}
		if table := h.rate.Table(); table != nil {
			ts := table.Stats()
			st.Rate = &ts
		}
		out, err := json.Marshal(st)
		if err != nil {
			return err
		}
		return h.write(append([]byte{msgStats}, out...))
	}
	return fmt.Errorf("%w: message of type %q from the parent", errMessage, typ)
}

func (h *helper) ack(err error) error {
	b := []byte{msgAck}
	if err != nil {
		b = append(b, err.Error()...)
	}
	return h.write(b)
}

func (h *helper) write(b []byte) error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	_, err := h.conn.Write(b)
	return err
}

// read returns the next message's type and payload (in buf, valid until
// the next read); io.EOF when the parent closed the socket.
func (h *helper) read(buf []byte) (byte, []byte, error) {
	return readMessage(h.conn, buf)
}

func readMessage(c *net.UnixConn, buf []byte) (byte, []byte, error) {
	n, err := c.Read(buf)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case n == 0:
		return 0, nil, io.EOF // SOCK_SEQPACKET: the peer shut down
	case n > maxMessage:
		return 0, nil, fmt.Errorf("%w: message over %d octets", errMessage, maxMessage)
	}
	return buf[0], buf[1:n], nil
}
