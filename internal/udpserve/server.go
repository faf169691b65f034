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
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"timegate/internal/audit"
	"timegate/internal/sockstamp"
	"timegate/ntp"
)

// Stats counts verdicts. Every field is safe to read concurrently.
type Stats struct {
	Received atomic.Uint64
	Replied  atomic.Uint64
	KoD      atomic.Uint64
	// KoDByCode splits KoD by kiss code.
	KoDRATE, KoDDENY, KoDRSTR atomic.Uint64
	NTSNAK                    atomic.Uint64
	Leaked                    atomic.Uint64
	// Dropped counts drops by reason, indexed by ntp.Reason.
	Dropped [ntp.NumReasons]atomic.Uint64
	// Auth counts answered requests by authentication kind.
	Auth [3]atomic.Uint64
	// SendErrors counts replies the kernel refused.
	SendErrors atomic.Uint64
}

// Server serves NTP on one socket.
type Server struct {
	Conn *net.UDPConn
	// Responder returns the responder to use for the next packet, so a
	// reload can swap it without stopping the loop.
	Responder func() *ntp.Responder
	Stats     *Stats
	Log       *zap.Logger
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
		s.handle(buf[:n], out, from, rx)
	}
}

func (s *Server) handle(req, out []byte, from netip.AddrPort, rx time.Time) {
	st := s.Stats
	st.Received.Add(1)
	reply, v := s.Responder().Respond(out, req, from, rx)
	if v.Reason != ntp.ReasonOK && s.Audit != nil && audit.NTPEpisodeType(v.Reason) != "" {
		s.Audit.Offer(from.Addr(), audit.KindNTP, uint8(v.Reason))
	}
	if v.Action == ntp.ActionDrop {
		st.Dropped[v.Reason].Add(1)
		if ce := s.Log.Check(zap.DebugLevel, "dropped"); ce != nil {
			ce.Write(zap.Stringer("client", from), zap.Stringer("reason", v.Reason))
		}
		return
	}
	if _, err := s.Conn.WriteToUDPAddrPort(reply, from); err != nil {
		st.SendErrors.Add(1)
		return
	}
	switch v.Action {
	case ntp.ActionReply:
		st.Replied.Add(1)
	case ntp.ActionKoD:
		st.KoD.Add(1)
		switch v.Kiss {
		case ntp.KissRATE:
			st.KoDRATE.Add(1)
		case ntp.KissDENY:
			st.KoDDENY.Add(1)
		case ntp.KissRSTR:
			st.KoDRSTR.Add(1)
		}
	case ntp.ActionNTSNAK:
		st.NTSNAK.Add(1)
	}
	if v.Leak {
		st.Leaked.Add(1)
	}
	if int(v.Auth) < len(st.Auth) {
		st.Auth[v.Auth].Add(1)
	}
}
