package udpserve

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"timegate/internal/audit"
	"timegate/ntp"
)

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
			b.ReportAllocs()
			for b.Loop() {
				s.handle(req, out, from, rx)
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			s := newServer(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				out := make([]byte, 0, bufSize)
				for pb.Next() {
					s.handle(req, out, from, rx)
				}
			})
		})
	}
}
