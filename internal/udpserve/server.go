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
	workers := make([]*worker, 0, len(s.Conns))
	var mu sync.Mutex // orders interrupt (at ctx's end) before close
	closed := false
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for _, w := range workers {
			w.close()
		}
	}()
	warned := false
	for _, c := range s.Conns {
		w, err := newWorker(s, c)
		if err != nil {
			return err
		}
		workers = append(workers, w)
		if !w.stamps && !warned {
			s.Log.Warn("kernel receive timestamps unavailable; using user-space time")
			warned = true
		}
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		for _, w := range workers {
			w.interrupt()
		}
	})
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i, w := range workers {
		wg.Go(func() {
			if s.LockThreads {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			errs[i] = w.run(ctx)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
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
