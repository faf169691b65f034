package keproc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"

	"timegate/internal/kelisten"
	"timegate/nts"
	"timegate/ratelimit"
)

// Config configures a Supervisor.
type Config struct {
	// Processes is how many helpers serve the listeners (ntsprocesses);
	// the kernel hands each new connection to one of them.
	Processes int
	// Listeners are the bound NTS-KE sockets. The Supervisor passes them to
	// every helper it starts and never accepts on them itself.
	Listeners []*os.File
	// Child is each helper's configuration; Index and Listeners are set
	// per helper.
	Child ChildConfig
	// Cert returns the certificate to serve now.
	Cert func() *tls.Certificate
	// Ring returns the cookie key ring to serve now (nil: none yet).
	Ring func() *nts.KeyRing
	// RingChanged, when set, signals that Ring may return a new ring: the
	// helpers get it at once. Without a signal they get it within
	// ringPollPeriod.
	RingChanged <-chan struct{}
	// OnFailure receives every refused or failed session, as
	// kelisten.Config.OnFailure would; it must not block.
	OnFailure func(Failure)
	// OnExit, when set, is told of every helper that ended or could not
	// start while the Supervisor ran (not of those it stopped itself):
	// which one, its pid (0 if it never started) and why. It must not
	// block.
	OnExit func(helper, pid int, err error)
	// Path is the program to run as a helper; empty: this program.
	Path string
	Log  *zap.Logger
}

// Timing of the supervision. A helper answers the parent between TLS
// sessions, never waiting on a client, so a reply later than
// requestTimeout means a helper that is not well: it is killed and
// started again, at most once per restartDelay's growing back-off.
const (
	requestTimeout  = 5 * time.Second
	stopTimeout     = 5 * time.Second // nts.DefaultTimeout for the last sessions, and margin
	minRestartDelay = 100 * time.Millisecond
	maxRestartDelay = 30 * time.Second
	ringPollPeriod  = 10 * time.Second
	// statsPollPeriod bounds what a helper that dies takes with it: its
	// counters are kept as of its last report.
	statsPollPeriod = 5 * time.Second
)

// Supervisor starts the helpers, restarts one that exits, and keeps each
// supplied with the current certificate and key ring.
type Supervisor struct {
	cfg Config
	log *zap.Logger

	mu       sync.Mutex
	live     []*child // indexed by helper; nil while one is (re)starting
	base     Stats    // counters of helpers that have exited, so totals never go back
	restarts uint64   // helpers that ended or failed to start while serving
	ready    chan struct{}
}

// New checks cfg and returns a Supervisor; Run starts the helpers.
func New(cfg Config) (*Supervisor, error) {
	if cfg.Processes < 1 || len(cfg.Listeners) == 0 || cfg.Cert == nil || cfg.Ring == nil {
		return nil, errors.New("keproc: processes, listeners, certificate and ring are required")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Supervisor{cfg: cfg, log: cfg.Log, live: make([]*child, cfg.Processes), ready: make(chan struct{})}, nil
}

// Run keeps the helpers running until ctx ends, then stops them, letting
// running sessions finish, and returns.
func (s *Supervisor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	started := make(chan struct{}, s.cfg.Processes)
	for i := range s.cfg.Processes {
		wg.Go(func() { s.keep(ctx, i, started) })
	}
	wg.Go(func() {
		for range s.cfg.Processes {
			select {
			case <-started:
			case <-ctx.Done():
				return
			}
		}
		close(s.ready)
	})
	wg.Go(func() {
		every(ctx, ringPollPeriod, s.cfg.RingChanged, func() {
			if err := s.PushRing(); err != nil {
				s.log.Warn("NTS-KE helper did not take the new key ring", zap.Error(err))
			}
		})
	})
	// Counters now and then, so that those of a helper that dies are lost
	// for at most statsPollPeriod.
	wg.Go(func() { every(ctx, statsPollPeriod, nil, func() { s.Stats() }) })
	wg.Wait()
	return nil
}

// Ready is closed once every helper has started and been given the
// certificate and the ring.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

// keep runs helper i, again and again, until ctx ends.
func (s *Supervisor) keep(ctx context.Context, i int, started chan<- struct{}) {
	// PR_SET_PDEATHSIG fires when the thread that started the helper ends,
	// not the process: this goroutine keeps its thread while helpers run,
	// so that a parent killed outright takes its helpers with it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	delay := minRestartDelay
	first := true
	for {
		began := time.Now()
		c, err := s.start(i)
		pid := 0
		if err == nil {
			pid = c.cmd.Process.Pid
			s.setLive(i, c)
			// A ring put in service, or a rate limit reloaded, while it
			// started was sent before it was live: each push sends only
			// a change.
			if err = c.pushRing(s.cfg.Ring()); err != nil {
				s.log.Warn("NTS-KE helper did not take the new key ring", zap.Int("helper", i), zap.Error(err))
			}
			if err = s.syncRate(c); err != nil {
				s.log.Warn("NTS-KE helper did not take the reloaded ntsratelimit", zap.Int("helper", i), zap.Error(err))
			}
			if first {
				started <- struct{}{}
				first = false
			}
			err = c.serve(ctx)
			s.retire(i, c)
		}
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
		if s.cfg.OnExit != nil {
			s.cfg.OnExit(i, pid, err)
		}
		if time.Since(began) > maxRestartDelay {
			delay = minRestartDelay // it ran well for a while
		}
		s.log.Error("NTS-KE helper ended; starting another", zap.Int("helper", i), zap.Error(err), zap.Duration("after", delay))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, maxRestartDelay)
	}
}

func (s *Supervisor) setLive(i int, c *child) {
	s.mu.Lock()
	s.live[i] = c
	s.mu.Unlock()
}

// retire folds an ended helper's last counters into the base.
func (s *Supervisor) retire(i int, c *child) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live[i] = nil
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	last.KE.Active = 0
	if last.Rate != nil {
		last.Rate.Entries = 0 // its table is gone
		last.Rate.Capacity = 0
	}
	s.base = addStats(s.base, last)
}

// start runs helper i and hands it its configuration, certificate and ring.
func (s *Supervisor) start(i int) (*child, error) {
	s.mu.Lock()
	cc := s.cfg.Child // SetRateLimit may change it meanwhile
	s.mu.Unlock()
	cc.Index, cc.Listeners = i, len(s.cfg.Listeners)
	config, err := json.Marshal(cc)
	if err != nil {
		return nil, err
	}
	c, err := startChild(s.cfg.Path, s.cfg.Listeners, s.cfg.OnFailure, s.log)
	if err != nil {
		return nil, err
	}
	c.rateSent = cc.RateLimit
	if err = c.request(append([]byte{msgConfig}, config...)); err == nil {
		if err = c.pushCert(s.cfg.Cert()); err == nil {
			err = c.pushRing(s.cfg.Ring())
		}
	}
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("NTS-KE helper %d: %w", i, err)
	}
	s.log.Debug("NTS-KE helper started", zap.Int("helper", i), zap.Int("pid", c.cmd.Process.Pid))
	return c, nil
}

// PushCert gives every running helper the current certificate, and
// returns once each has it; helpers started later get it at start.
func (s *Supervisor) PushCert() error {
	return s.each(func(c *child) error { return c.pushCert(s.cfg.Cert()) })
}

// PushRing gives every running helper the current key ring if it has
// changed, and returns once each has it. The Supervisor also pushes a new
// ring by itself when Config.RingChanged signals, and looks for one every
// ringPollPeriod in case a change went unsignalled.
func (s *Supervisor) PushRing() error {
	return s.each(func(c *child) error { return c.pushRing(s.cfg.Ring()) })
}

// SetRateLimit puts a reloaded ntsratelimit (nil: off) in force in every
// running helper, and returns once each has it; helpers started later
// get it with their configuration. A helper keeps its table, and what it
// knows of each source, when the settings are the ones it has.
func (s *Supervisor) SetRateLimit(rc *ratelimit.Config) error {
	s.mu.Lock()
	s.cfg.Child.RateLimit = rc
	s.mu.Unlock()
	return s.each(s.syncRate)
}

// rateLimit is the ntsratelimit helpers are to have now.
func (s *Supervisor) rateLimit() *ratelimit.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Child.RateLimit
}

// every runs f each period, and whenever wake signals (nil: never), until
// ctx ends. The ring and the counters have a loop each, so that a helper
// slow to report never delays a new ring.
func every(ctx context.Context, period time.Duration, wake <-chan struct{}, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
		f()
	}
}

func (s *Supervisor) each(f func(*child) error) error {
	s.mu.Lock()
	live := make([]*child, 0, len(s.live))
	for _, c := range s.live {
		if c != nil {
			live = append(live, c)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, c := range live {
		if err := f(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats sums the counters of every helper, those that have exited
// included (as of their last report, at most statsPollPeriod old). A
// helper that does not answer counts with its last report.
func (s *Supervisor) Stats() Stats {
	s.mu.Lock()
	total := s.base
	live := make([]*child, 0, len(s.live))
	for _, c := range s.live {
		if c != nil {
			live = append(live, c)
		}
	}
	s.mu.Unlock()
	for _, c := range live {
		total = addStats(total, c.stats())
	}
	return total
}

// Processes is how many helpers the Supervisor keeps running.
func (s *Supervisor) Processes() int { return s.cfg.Processes }

// Restarts counts the helpers that ended, or could not be started, while
// the Supervisor ran: each was (or is being) started again.
func (s *Supervisor) Restarts() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

func addStats(a, b Stats) Stats {
	a.KE = kelisten.AddStats(a.KE, b.KE)
	a.FailuresDropped += b.FailuresDropped
	if b.Rate != nil {
		r := ratelimit.Stats{}
		if a.Rate != nil {
			r = *a.Rate
		}
		r.Passed += b.Rate.Passed
		r.Dropped += b.Rate.Dropped
		r.Leaked += b.Rate.Leaked
		r.KoD += b.Rate.KoD
		r.Evictions += b.Rate.Evictions
		r.Entries += b.Rate.Entries
		r.Capacity += b.Rate.Capacity
		a.Rate = &r
	}
	return a
}

// child is one running helper seen from the parent.
type child struct {
	cmd       *exec.Cmd
	conn      *net.UnixConn
	onFailure func(Failure)
	log       *zap.Logger

	req     sync.Mutex    // one request at a time
	replies chan []byte   // msgAck and msgStats payloads
	failed  chan struct{} // closed when the reader ends, readErr set
	readErr error
	exited  chan struct{} // closed when the process has been waited for

	mu       sync.Mutex
	last     Stats // the last report, for Stats when it does not answer
	certSent *tls.Certificate
	ringSent *nts.KeyRing
	ringOnce bool // ringSent is meaningful (nil is a ring state too)

	rateMu   sync.Mutex        // held by syncRate from reading the setting to recording it
	rateSent *ratelimit.Config // the ntsratelimit it has (nil: off)
}

// serve waits until the helper exits or ctx ends; on ctx's end it closes
// the control socket, which tells the helper to stop accepting and exit
// once its sessions end, and kills it if it has not after stopTimeout.
func (c *child) serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
		c.stop()
		return nil
	case <-c.failed:
		c.stop()
		if errors.Is(c.readErr, io.EOF) {
			return c.exitError() // it closed the socket by exiting
		}
		return c.readErr
	case <-c.exited:
		c.conn.Close()
		return c.exitError()
	}
}

func (c *child) exitError() error {
	return fmt.Errorf("process %d %v", c.cmd.Process.Pid, c.cmd.ProcessState)
}

// stop closes the control socket and waits for the process, killing it
// after stopTimeout.
func (c *child) stop() {
	c.conn.Close()
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		c.log.Warn("NTS-KE helper did not stop; killing it", zap.Int("pid", c.cmd.Process.Pid))
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// reader delivers failures as they come and replies to the waiting request.
func (c *child) reader() {
	buf := make([]byte, maxMessage+1)
	for {
		typ, p, err := readMessage(c.conn, buf)
		if err == nil {
			switch typ {
			case msgFailures:
				if c.onFailure != nil {
					err = parseFailures(p, c.onFailure)
				}
			case msgAck, msgStats:
				// Requests take turns and each takes its reply, so the
				// slot is free unless the helper answered unasked.
				select {
				case c.replies <- append([]byte{typ}, p...):
				default:
					err = fmt.Errorf("%w: a reply nothing asked for", errMessage)
				}
			default:
				err = fmt.Errorf("%w: message of type %q from a helper", errMessage, typ)
			}
		}
		if err != nil {
			c.readErr = err
			close(c.failed)
			return
		}
	}
}

// request sends one message and returns the helper's reply. A refusal
// (an ack with a reason) is an error; no reply within requestTimeout, or
// a reply of the wrong type, is an error after which the helper is
// restarted.
func (c *child) request(msg []byte) error {
	_, err := c.exchange(msg, msgAck)
	return err
}

func (c *child) exchange(msg []byte, want byte) ([]byte, error) {
	c.req.Lock()
	defer c.req.Unlock()
	if len(msg) > maxMessage {
		return nil, fmt.Errorf("keproc: a message of %d octets exceeds the helper's bound of %d", len(msg), maxMessage)
	}
	if _, err := c.conn.Write(msg); err != nil {
		return nil, err
	}
	t := time.NewTimer(requestTimeout)
	defer t.Stop()
	select {
	case r := <-c.replies:
		switch {
		case r[0] != want:
			c.conn.Close() // out of step: start again
			return nil, fmt.Errorf("%w: reply of type %q to %q", errMessage, r[0], msg[0])
		case want == msgAck && len(r) > 1:
			return nil, fmt.Errorf("helper refused it: %s", r[1:])
		}
		return r[1:], nil
	case <-c.failed:
		return nil, c.readErr
	case <-t.C:
		c.conn.Close()
		return nil, fmt.Errorf("helper did not answer within %v", requestTimeout)
	}
}

func (c *child) pushCert(cert *tls.Certificate) error {
	c.mu.Lock()
	same := c.certSent == cert
	c.mu.Unlock()
	if same {
		return nil
	}
	chain, key, err := certPEM(cert)
	if err != nil {
		return err
	}
	msg := encodeCert(chain, key)
	clear(key)
	err = c.request(msg)
	clear(msg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.certSent = cert
	c.mu.Unlock()
	return nil
}

func (c *child) pushRing(ring *nts.KeyRing) error {
	c.mu.Lock()
	same := c.ringOnce && c.ringSent == ring
	c.mu.Unlock()
	if same {
		return nil
	}
	msg := []byte{msgRing}
	if ring != nil {
		b := ring.MarshalHandover()
		msg = append(msg, b...)
		clear(b)
	}
	err := c.request(msg)
	clear(msg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.ringSent, c.ringOnce = ring, true
	c.mu.Unlock()
	return nil
}

// syncRate gives helper c the ntsratelimit in force now unless it has
// those settings already. Holding c.rateMu from reading the setting to
// recording what was sent keeps an older setting (read as a restarted
// helper went live) from landing after a newer one a reload sent.
func (s *Supervisor) syncRate(c *child) error {
	c.rateMu.Lock()
	defer c.rateMu.Unlock()
	rc := s.rateLimit()
	if c.rateSent == rc || c.rateSent != nil && rc != nil && *c.rateSent == *rc {
		return nil
	}
	msg, err := json.Marshal(rc)
	if err != nil {
		return err
	}
	if err := c.request(append([]byte{msgRate}, msg...)); err != nil {
		return err
	}
	c.rateSent = rc
	return nil
}

func (c *child) stats() Stats {
	p, err := c.exchange([]byte{msgStatsReq}, msgStats)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		return c.last
	}
	var st Stats
	if err := json.Unmarshal(p, &st); err != nil {
		c.log.Warn("NTS-KE helper's counters unreadable", zap.Error(err))
		return c.last
	}
	c.last = st
	return st
}

// certPEM encodes a certificate chain and its private key as PEM.
func certPEM(cert *tls.Certificate) (chain, key []byte, err error) {
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, nil, errors.New("keproc: no certificate to serve")
	}
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("keproc: certificate key: %w", err)
	}
	key = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	return chain, key, nil
}
