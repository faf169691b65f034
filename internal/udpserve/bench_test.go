package udpserve

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"timegate/internal/audit"
	"timegate/ntp"
)

// BenchmarkCount is the counting a worker does per request (received by
// mode, then one verdict) with every goroutine counting at once; run with
// -cpu 1,2. "shared" gives all goroutines one block, the layout before
// issue 8, to show what sharing the counters' cache lines costs.
func BenchmarkCount(b *testing.B) {
	req := ntp.ClientRequest(nil, 4, 3, 0x0102030405060708)
	v := ntp.Verdict{Action: ntp.ActionReply}
	b.Run("per-worker", func(b *testing.B) {
		st := &Stats{}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			c := st.worker()
			for pb.Next() {
				c.request(req)
				c.record(v, false)
			}
		})
	})
	b.Run("shared", func(b *testing.B) {
		c := (&Stats{}).worker()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.request(req)
				c.record(v, false)
			}
		})
	})
}

// BenchmarkRespondCount is the packet path without the socket: Respond then
// the counters, one worker per goroutine.
func BenchmarkRespondCount(b *testing.B) {
	st := &Stats{}
	state := &ntp.ServedState{Stratum: 2, RefID: 0x7f000001}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return state }}
	client := netip.MustParseAddrPort("192.0.2.1:123")
	rx := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := st.worker()
		req := ntp.ClientRequest(nil, 4, 3, 0x0102030405060708)
		out := make([]byte, 0, bufSize)
		for pb.Next() {
			c.request(req)
			_, v := resp.Respond(out, req, client, rx)
			c.record(v, false)
		}
	})
}

// BenchmarkSnapshot is what a scrape or `gatectl serverstats` costs with
// one block per core of a large server.
func BenchmarkSnapshot(b *testing.B) {
	st := &Stats{}
	for range 64 {
		st.worker().request([]byte{0x23})
	}
	b.ReportAllocs()
	for b.Loop() {
		if st.Snapshot().Received != 64 {
			b.Fatal("lost counts")
		}
	}
}

// dropAll is a gate that refuses every request as rate limited: the path a
// flood takes, and the one the audit hand-off sits on.
type dropAll struct{}

func (dropAll) Admit(netip.Addr, time.Time, ntp.AuthKind) ntp.Admission {
	return ntp.Admission{Action: ntp.ActionDrop, Reason: ntp.ReasonRateLimited}
}

// BenchmarkHandleDrop measures the per-packet cost of a refused request
// without the audit trail, with it (ring drained as the aggregator does),
// and with the ring full (a flood beyond what is attributed), serially and
// from parallel workers. Figures in BENCHMARKS.md.
func BenchmarkHandleDrop(b *testing.B) {
	st := &ntp.ServedState{Stratum: 3}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }, Gate: dropAll{}}
	req := ntp.ClientRequest(nil, 4, 3, 1)
	from := netip.MustParseAddrPort("192.0.2.7:40000")
	rx := time.Now()
	for _, c := range []struct {
		name  string
		ring  bool
		drain bool
	}{{"no-audit", false, false}, {"audit-ring", true, true}, {"audit-ring-full", true, false}} {
		newServer := func(b *testing.B) *Server {
			s := &Server{Responder: func() *ntp.Responder { return resp }, Stats: &Stats{}, Log: zap.NewNop()}
			if c.ring {
				s.Audit = audit.NewRing(audit.DefaultRingSize)
				if c.drain {
					stop := audit.DrainForBenchmark(s.Audit)
					b.Cleanup(stop)
				}
			}
			return s
		}
		b.Run(c.name, func(b *testing.B) {
			s := newServer(b)
			out := make([]byte, 0, bufSize)
			cnt := s.Stats.worker()
			b.ReportAllocs()
			for b.Loop() {
				dropPath(s, cnt, req, out, from, rx)
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			s := newServer(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				out := make([]byte, 0, bufSize)
				cnt := s.Stats.worker()
				for pb.Next() {
					dropPath(s, cnt, req, out, from, rx)
				}
			})
		})
	}
}

// dropPath is what a worker does with a request the responder drops, without
// the socket: count it, answer nothing, offer it to the audit ring.
func dropPath(s *Server, cnt *counters, req, out []byte, from netip.AddrPort, rx time.Time) {
	cnt.request(req)
	_, v := s.Responder().Respond(out, req, from, rx)
	s.offerAudit(from, v)
	cnt.record(v, false)
	s.logDrop(from, v)
}
