package udpserve

import (
	"net/netip"
	"testing"
	"time"

	"timegate/ntp"
)

// BenchmarkCount is the counting a worker does per request (received plus
// one verdict) with every goroutine counting at once: run with -cpu 1,2 to
// see what sharing the counters' cache lines costs.
func BenchmarkCount(b *testing.B) {
	st := &Stats{}
	v := ntp.Verdict{Action: ntp.ActionReply}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st.Received.Add(1)
			st.record(v, false)
		}
	})
}

// BenchmarkRespondCount is the packet path without the socket: Respond then
// the counters, in parallel.
func BenchmarkRespondCount(b *testing.B) {
	st := &Stats{}
	state := &ntp.ServedState{Stratum: 2, RefID: 0x7f000001}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return state }}
	client := netip.MustParseAddrPort("192.0.2.1:123")
	rx := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := ntp.ClientRequest(nil, 4, 3, 0x0102030405060708)
		out := make([]byte, 0, bufSize)
		for pb.Next() {
			st.Received.Add(1)
			_, v := resp.Respond(out, req, client, rx)
			st.record(v, false)
		}
	})
}
