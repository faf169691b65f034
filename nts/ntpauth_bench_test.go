package nts

import (
	"fmt"
	"testing"
	"time"

	"timegate/ntp"
)

// BenchmarkRespondNTS is the whole NTS server path through ntp.Responder:
// parse, open the cookie, verify the request, write the header, seal 1 or
// 8 new cookies and the reply. after-T3-ns/op is the time from reading the
// clock for the transmit timestamp to Respond returning: work done there
// delays the packet after its timestamp was taken.
func BenchmarkRespondNTS(b *testing.B) {
	for _, held := range []int{8, 1} {
		b.Run(map[int]string{8: "cookies=1", 1: "cookies=8"}[held], func(b *testing.B) {
			f := newNTSFixture(b)
			var t3 time.Time
			f.resp.Now = func() time.Time { t3 = time.Now(); return t3 }
			_, req := f.request(b, held)
			dst := make([]byte, 0, ntp.MaxPacketLen)
			var after time.Duration
			b.ReportAllocs()
			b.SetBytes(int64(len(req)))
			for b.Loop() {
				reply, v := f.resp.Respond(dst, req, ntsClient, ntsRx)
				after += time.Since(t3)
				if v.Action != ntp.ActionReply || len(reply) != len(req) {
					b.Fatalf("verdict %+v", v)
				}
			}
			b.ReportMetric(float64(after.Nanoseconds())/float64(b.N), "after-T3-ns/op")
		})
	}
}

// BenchmarkRespondNTSNAK is the cost of a request whose cookie does not open.
func BenchmarkRespondNTSNAK(b *testing.B) {
	f := newNTSFixture(b)
	_, req := f.request(b, 8)
	for range 2 {
		f.ring, _ = f.ring.Rotated(testEpoch, seeded(3), 1)
	}
	dst := make([]byte, 0, ntp.MaxPacketLen)
	b.ReportAllocs()
	for b.Loop() {
		if _, v := f.resp.Respond(dst, req, ntsClient, ntsRx); v.Action != ntp.ActionNTSNAK {
			b.Fatalf("verdict %+v", v)
		}
	}
}

// BenchmarkClientExchange is the client's share of one exchange: build a
// request, then authenticate the reply and take its cookie.
func BenchmarkClientExchange(b *testing.B) {
	f := newNTSFixture(b)
	s := f.session(b, MaxCookies)
	_, req := f.request(b, MaxCookies)
	reply, _ := f.respond(req)
	uid := testUID()
	rnd := seeded(5)
	buf := make([]byte, 0, ntp.MaxPacketLen)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.BuildRequest(buf, ntsNonce, uid, rnd); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ProcessReply(reply, uid); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRespondNTSNewClients is the NTS path when the client's keys are
// not among the expanded keys the server keeps (keyCache): requests cycle
// through 64 clients whose keys take the same 32 slots, so every request
// expands its keys as it did before the cache (crypto/aes allocates).
func BenchmarkRespondNTSNewClients(b *testing.B) {
	f := newNTSFixture(b)
	var reqs [][]byte
	for i := range 64 {
		f.keys = testCookie(byte(i))
		_, req := f.request(b, 8)
		reqs = append(reqs, req)
	}
	dst := make([]byte, 0, ntp.MaxPacketLen)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, v := f.resp.Respond(dst, reqs[i%len(reqs)], ntsClient, ntsRx); v.Action != ntp.ActionReply {
			b.Fatalf("verdict %+v", v)
		}
		i++
	}
}

// BenchmarkRespondNTSBatch is BenchmarkRespondNTS's one-cookie request
// from n distinct clients answered as one batch (RespondOrDefer for each,
// RespondNTS, NTSResult for each), as the UDP edge's worker answers the NTS
// requests of one receive batch; the serial variants answer the same n
// requests with Respond, one after another, as the worker did before.
// ns/op is per batch; ns/req divides it by n, to compare with
// BenchmarkRespondNTS/cookies=1. after-T3-ns/req is the time from each
// reply's clock reading to the batch's end, averaged: the replies leave
// together after it (as they do in one sendmmsg).
func BenchmarkRespondNTSBatch(b *testing.B) {
	for _, n := range []int{1, 2, 4, 16} {
		b.Run(fmt.Sprintf("serial/n=%d", n), func(b *testing.B) {
			f := newNTSFixture(b)
			var t3 []time.Time
			f.resp.Now = func() time.Time { t := time.Now(); t3 = append(t3, t); return t }
			reqs := make([][]byte, n)
			dst := make([]byte, 0, ntp.MaxPacketLen)
			for i := range reqs {
				f.keys = testCookie(byte(7 + 5*i))
				_, reqs[i] = f.request(b, 8)
			}
			t3 = make([]time.Time, 0, 4*n)
			var after time.Duration
			b.ReportAllocs()
			for b.Loop() {
				t3 = t3[:0]
				for i := range reqs {
					if reply, v := f.resp.Respond(dst, reqs[i], ntsClient, ntsRx); v.Action != ntp.ActionReply || len(reply) != len(reqs[i]) {
						b.Fatalf("verdict %+v", v)
					}
				}
				end := time.Now()
				for _, t := range t3 {
					after += end.Sub(t)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/req")
			b.ReportMetric(float64(after.Nanoseconds())/float64(b.N*n), "after-T3-ns/req")
		})
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			f := newNTSFixture(b)
			var t3 []time.Time
			f.resp.Now = func() time.Time { t := time.Now(); t3 = append(t3, t); return t }
			reqs := make([][]byte, n)
			dsts := make([][]byte, n)
			for i := range reqs {
				f.keys = testCookie(byte(7 + 5*i))
				_, reqs[i] = f.request(b, 8)
				dsts[i] = make([]byte, 0, ntp.MaxPacketLen)
			}
			jobs := make([]ntp.NTSJob, n)
			t3 = make([]time.Time, 0, 4*n)
			var after time.Duration
			b.ReportAllocs()
			for b.Loop() {
				t3 = t3[:0]
				for i := range reqs {
					if _, v, ok := f.resp.RespondOrDefer(dsts[i], reqs[i], ntsClient, ntsRx, 0, &jobs[i]); !ok {
						b.Fatalf("not deferred: %+v", v)
					}
				}
				f.resp.RespondNTS(jobs)
				for i := range jobs {
					if reply, v := f.resp.NTSResult(&jobs[i]); v.Action != ntp.ActionReply || len(reply) != len(reqs[i]) {
						b.Fatalf("verdict %+v", v)
					}
				}
				end := time.Now()
				for _, t := range t3 {
					after += end.Sub(t)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/req")
			b.ReportMetric(float64(after.Nanoseconds())/float64(b.N*n), "after-T3-ns/req")
		})
	}
}
