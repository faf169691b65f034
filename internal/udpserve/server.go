// Package udpserve is the NTP service's network edge: it reads datagrams,
// stamps them with the kernel's receive time, asks the pure ntp.Responder
// for a verdict and sends what it says. It owns sockets and goroutines and
// nothing else: every decision is the responder's.
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
	"timegate/internal/sockstamp"
	"timegate/ntp"
)

// Server serves NTP on one socket.
type Server struct {
	Conn *net.UDPConn
	// Responder returns the responder to use for the next packet, so a
	// reload can swap it without stopping the loop.
	Responder func() *ntp.Responder
	// Stats gets one block of counters per worker. Required.
	Stats *Stats
	Log   *zap.Logger
	// Workers is the number of reading goroutines; 0 means GOMAXPROCS.
	Workers int
	// Audit, when set, is told of refusals worth an audit episode (policy,
	// rate limit, authentication failures) through a lock-free ring: no
	// lock, allocation or formatting on this path; the aggregation into one
	// record per source and interval happens on the ring's consumer.
	Audit *audit.Ring
}

// bufSize bounds what is read per datagram: ntp.MaxPacketLen plus one byte so
// that an oversized datagram is seen as such (and dropped) rather than
// silently truncated into something parseable.
const bufSize = ntp.MaxPacketLen + 1

// Serve runs until ctx ends or the socket fails.
func (s *Server) Serve(ctx context.Context) error {
	kernelStamps := sockstamp.Enable(s.Conn) == nil
	if !kernelStamps {
		s.Log.Warn("kernel receive timestamps unavailable; using user-space time")
	}
	stop := context.AfterFunc(ctx, func() { s.Conn.Close() })
	defer stop()
	n := s.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.loop(ctx) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

func (s *Server) loop(ctx context.Context) error {
	cnt := s.Stats.worker()
	buf := make([]byte, bufSize)
	out := make([]byte, 0, bufSize)
	oob := make([]byte, sockstamp.OOBSize)
	for {
		n, oobn, _, from, err := s.Conn.ReadMsgUDPAddrPort(buf, oob)
		rx := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// A transient error (e.g. ICMP-induced ECONNREFUSED on some
			// systems) must not stop the service.
			if !errors.Is(err, net.ErrClosed) {
				s.Log.Debug("read error", zap.Error(err))
				time.Sleep(time.Millisecond)
				continue
			}
			return err
		}
		if t, ok := sockstamp.Time(oob[:oobn]); ok {
			rx = t
		}
		s.handle(cnt, buf[:n], out, from, rx)
	}
}

func (s *Server) handle(cnt *counters, req, out []byte, from netip.AddrPort, rx time.Time) {
	cnt.request(req)
	reply, v := s.Responder().Respond(out, req, from, rx)
	if v.Reason != ntp.ReasonOK && s.Audit != nil && audit.NTPEpisodeType(v.Reason) != "" {
		s.Audit.Offer(from.Addr(), audit.KindNTP, uint8(v.Reason))
	}
	if v.Action == ntp.ActionDrop {
		cnt.record(v, false)
		if ce := s.Log.Check(zap.DebugLevel, "dropped"); ce != nil {
			ce.Write(zap.Stringer("client", from), zap.Stringer("reason", v.Reason))
		}
		return
	}
	_, err := s.Conn.WriteToUDPAddrPort(reply, from)
	cnt.record(v, err != nil)
}
