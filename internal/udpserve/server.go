// Package udpserve is the NTP service's network edge: it reads datagrams,
// stamps them with the kernel's receive time, asks the pure ntp.Responder
// for a verdict and sends what it says. It owns sockets and goroutines and
// nothing else: every decision is the responder's.
//
// One address is served by a group of sockets sharing its port
// (SO_REUSEPORT, see Listen), each read by its own goroutine, a worker,
// with its own buffers and counters: nothing on the packet path is shared
// between workers but the responder's read-only state. On 64-bit Linux a
// worker receives and sends in batches (recvmmsg/sendmmsg), reading per
// datagram the kernel receive timestamp and the address the request was
// sent to, and answers from that address.
package udpserve

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"

	"timegate/internal/audit"
	"timegate/ntp"
)

// Server serves NTP on a group of sockets, one worker each.
type Server struct {
	// Conns are the sockets, usually the group Listen opened for one
	// address. Serve closes them when its context ends.
	Conns []*net.UDPConn
	// Responder returns the responder to use for the next packets, so a
	// reload can swap it without stopping the loop.
	Responder func() *ntp.Responder
	// Stats gets one block of counters per worker. Required.
	Stats *Stats
	Log   *zap.Logger
	// Audit, when set, is told of refusals worth an audit episode (policy,
	// rate limit, authentication failures) through a lock-free ring: no
	// lock, allocation or formatting on this path; the aggregation into one
	// record per source and interval happens on the ring's consumer.
	Audit *audit.Ring
	// LockThreads locks each worker to an OS thread of its own, so that the
	// kernel schedules it as a thread (beside NTS-KE threads of a lower
	// priority, see kelisten.Config.Nice) rather than the Go scheduler
	// queueing it behind runnable handshake goroutines.
	LockThreads bool
	// NoTxLead leaves basic replies' transmit timestamps at the clock read
	// before the send: no lead is learned or added (txlead.go; `txlead off`).
	NoTxLead bool
	// Grow, when set, opens one more socket of the group (same address and
	// port); Serve calls it when a worker finds a full batch waiting, until
	// MaxWorkers sockets serve. A quiet gateway then serves from one socket
	// and one worker, as `ntpworkers 1` does (one more worker, merely
	// existing, lengthens every reply's path by tens of nanoseconds on
	// loopback: BENCHMARKS.md, issue 14), and a flood gets them all within
	// a batch or two. Linux only (the batch path).
	Grow       func() (*net.UDPConn, error)
	MaxWorkers int
	busy       chan struct{} // a worker found a full batch; nil without Grow
}

// bufSize bounds what is read per datagram: ntp.MaxPacketLen plus one byte so
// that an oversized datagram is seen as such (and dropped) rather than
// silently truncated into something parseable.
const bufSize = ntp.MaxPacketLen + 1

// Serve runs until ctx ends or a socket fails. It takes the sockets over
// (on Linux each worker detaches its socket from Go's poller, closing the
// *net.UDPConn) and releases them when it returns.
func (s *Server) Serve(ctx context.Context) error {
	if len(s.Conns) == 0 {
		return errors.New("udpserve: no sockets")
	}
	g := &group{s: s, errs: make(chan error, len(s.Conns)+s.MaxWorkers)}
	defer g.close()
	for _, c := range s.Conns {
		if err := g.add(c); err != nil {
			return err
		}
	}
	if s.Grow != nil && g.size() < s.MaxWorkers {
		s.busy = make(chan struct{}, 1)
	}
	stop := context.AfterFunc(ctx, g.interrupt)
	defer stop()
	for _, w := range g.snapshot() {
		g.start(ctx, w)
	}
	var err error
	for running := g.size(); running > 0; {
		select {
		case e := <-g.errs:
			running--
			err = errors.Join(err, e)
		case <-s.busy:
			if g.grow(ctx) {
				running++
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// group is Serve's workers. Sockets join it at start and, with Grow, as
// load appears; a worker once started runs until Serve ends.
type group struct {
	s          *Server
	mu         sync.Mutex // orders interrupt (at ctx's end) before close, and guards workers
	workers    []*worker
	stopped    bool // interrupted: no worker joins any more
	closed     bool
	warned     bool // kernel receive timestamps unavailable, said once
	growFailed bool // a Grow failed, said once; no more attempts
	errs       chan error
	wg         sync.WaitGroup
}

func (g *group) add(c *net.UDPConn) error {
	w, err := newWorker(g.s, c)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		w.close()
		return net.ErrClosed
	}
	g.workers = append(g.workers, w)
	if !w.stamps && !g.warned {
		g.s.Log.Warn("kernel receive timestamps unavailable; using user-space time")
		g.warned = true
	}
	return nil
}

func (g *group) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.workers)
}

func (g *group) snapshot() []*worker {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*worker(nil), g.workers...)
}

func (g *group) start(ctx context.Context, w *worker) {
	g.wg.Go(func() {
		if g.s.LockThreads {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
		}
		g.errs <- w.run(ctx)
	})
}

// grow adds a socket and its worker, when a worker found a full batch
// waiting and the group is below MaxWorkers; it reports whether it did.
func (g *group) grow(ctx context.Context) bool {
	if g.growFailed || ctx.Err() != nil || g.size() >= g.s.MaxWorkers {
		return false
	}
	c, err := g.s.Grow()
	if err == nil {
		err = g.add(c)
	}
	if err != nil {
		g.growFailed = true
		if ctx.Err() == nil {
			g.s.Log.Warn("cannot add an NTP socket under load; serving with the workers there are", zap.Int("workers", g.size()), zap.Error(err))
		}
		return false
	}
	ws := g.snapshot()
	g.start(ctx, ws[len(ws)-1])
	g.s.Log.Info("NTP load: another worker serves", zap.Int("workers", len(ws)), zap.Int("max", g.s.MaxWorkers))
	return true
}

func (g *group) interrupt() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.stopped = true
	for _, w := range g.workers {
		w.interrupt()
	}
}

// close waits for the workers to end and releases their sockets.
func (g *group) close() {
	g.interrupt()
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for _, w := range g.workers {
		w.close()
	}
}

// readError decides what a failed read means: nil to go on (a transient
// error, e.g. an ICMP-induced ECONNREFUSED, must not stop the service), or
// the error that ends the worker.
func (s *Server) readError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if errors.Is(err, net.ErrClosed) {
		return err
	}
	s.Log.Debug("read error", zap.Error(err))
	time.Sleep(time.Millisecond)
	return nil
}

// logDrop notes a dropped request at debug level; the check costs nothing
// when debug logging is off, and nothing is formatted unless it is on.
func (s *Server) logDrop(from netip.AddrPort, v ntp.Verdict) {
	if ce := s.Log.Check(zap.DebugLevel, "dropped"); ce != nil {
		ce.Write(zap.Stringer("client", from), zap.Stringer("reason", v.Reason))
	}
}

// offerAudit hands a refusal worth an audit episode to the ring.
func (s *Server) offerAudit(from netip.AddrPort, v ntp.Verdict) {
	if v.Reason != ntp.ReasonOK && s.Audit != nil && audit.NTPEpisodeType(v.Reason) != "" {
		s.Audit.Offer(from.Addr(), audit.KindNTP, uint8(v.Reason))
	}
}
