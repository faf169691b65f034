package udpserve

import (
	"sync"
	"testing"
	"unsafe"

	"timegate/ntp"
)

// TestSnapshotSumsWorkers: every count made by any worker, concurrently
// with reads, is in the sum, under the counter each verdict names.
func TestSnapshotSumsWorkers(t *testing.T) {
	st := &Stats{}
	verdicts := []ntp.Verdict{
		{Action: ntp.ActionReply, Auth: ntp.AuthNone},
		{Action: ntp.ActionReply, Auth: ntp.AuthNTS, Leak: true},
		{Action: ntp.ActionKoD, Kiss: ntp.KissRATE, Reason: ntp.ReasonRateLimited},
		{Action: ntp.ActionKoD, Kiss: ntp.KissDENY, Auth: ntp.AuthKey},
		{Action: ntp.ActionKoD, Kiss: ntp.KissRSTR},
		{Action: ntp.ActionNTSNAK, Kiss: ntp.KissNTSN, Auth: ntp.AuthNTS},
		{Action: ntp.ActionDrop, Reason: ntp.ReasonMode},
		{Action: ntp.ActionDrop, Reason: ntp.ReasonBadMAC, Auth: ntp.AuthKey},
	}
	const workers, rounds = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := st.worker()
			for i := range rounds {
				// Modes 3 (client) and 6 (control), and one empty datagram.
				c.request([]byte{byte(3 + 3*(i%2))})
				for _, v := range verdicts {
					c.record(v, w == 0 && v.Action == ntp.ActionReply && v.Auth == ntp.AuthNone)
				}
			}
			c.request(nil)
		})
		_ = st.Snapshot() // reads race with the workers' counting
	}
	wg.Wait()
	s := st.Snapshot()
	n := uint64(workers * rounds)
	want := Snapshot{
		Received: n + workers, Replied: 2*n - rounds, KoD: 3 * n, KoDRATE: n, KoDDENY: n, KoDRSTR: n,
		NTSNAK: n, Leaked: n, SendErrors: rounds,
	}
	want.ByMode[3], want.ByMode[6] = n/2, n/2
	want.Dropped[ntp.ReasonMode], want.Dropped[ntp.ReasonBadMAC] = n, n
	want.Answered[ntp.AuthNone] = 3*n - rounds // replies less send errors, RATE and RSTR kisses
	want.Answered[ntp.AuthKey] = n
	want.Answered[ntp.AuthNTS] = 2 * n
	if s != want {
		t.Fatalf("snapshot\n got %+v\nwant %+v", s, want)
	}
}

// TestCountersPadded: a worker's counters start and end at least a padding
// away from its block's edges, so no neighbouring allocation shares them.
func TestCountersPadded(t *testing.T) {
	var c counters
	first := unsafe.Offsetof(c.received)
	last := unsafe.Offsetof(c.answered) + unsafe.Sizeof(c.answered)
	if first < cacheLine || unsafe.Sizeof(c)-last < cacheLine {
		t.Fatalf("counters at [%d, %d) of %d bytes", first, last, unsafe.Sizeof(c))
	}
}
