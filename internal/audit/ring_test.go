package audit

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"timegate/audit"
	"timegate/ntp"
)

func TestRingConcurrent(t *testing.T) {
	r := NewRing(1024)
	const producers, each = 4, 5000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			a := netip.AddrFrom4([4]byte{10, 0, 0, byte(p)})
			for range each {
				r.Offer(a, KindNTP, uint8(ntp.ReasonRateLimited))
			}
		})
	}
	got := map[netip.Addr]int{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			r.drain(func(a netip.Addr, k Kind, c uint8) { got[a]++ })
			select {
			case <-stop:
				r.drain(func(a netip.Addr, k Kind, c uint8) { got[a]++ })
				return
			default:
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	total := int(r.takeLost())
	for _, n := range got {
		total += n
	}
	if total != producers*each {
		t.Fatalf("accounted %d of %d", total, producers*each)
	}
}

func TestRingOfferAllocatesNothing(t *testing.T) {
	r := NewRing(16)
	a := netip.MustParseAddr("2001:db8::1")
	if n := testing.AllocsPerRun(1000, func() { r.Offer(a, KindNTP, 7) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

type memRec struct {
	mu sync.Mutex
	ev []audit.Event
}

func (m *memRec) Record(e audit.Event) { m.mu.Lock(); m.ev = append(m.ev, e); m.mu.Unlock() }

// TestEpisodes: a flood from one network becomes one record per interval
// and reason, with the count; unattributed overflow is reported too.
func TestEpisodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRing(64)
		rec := &memRec{}
		e := &Episodes{Ring: r, Rec: rec, Interval: 10 * time.Second}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Run(ctx); close(done) }()
		a := netip.MustParseAddr("192.0.2.7")
		b := netip.MustParseAddr("2001:db8:1:2::99")
		for range 5 {
			for range 10 {
				r.Offer(a, KindNTP, uint8(ntp.ReasonRateLimited))
				r.Offer(b, KindNTP, uint8(ntp.ReasonPolicy))
			}
			time.Sleep(200 * time.Millisecond)
		}
		// The sleep and the drain ticker end at the same instant: wait
		// until the drain that instant woke has finished, or it may empty
		// the ring in the middle of the flood and more than 64 fit.
		synctest.Wait()
		for range 100 {
			r.Offer(a, KindNTP, uint8(ntp.ReasonBadMAC)) // 64 fit, the rest is lost
		}
		time.Sleep(11 * time.Second)
		cancel()
		<-done
		var lines []string
		for _, ev := range rec.ev {
			lines = append(lines, string(ev.Type)+" "+ev.Subject.Prefix+" "+ev.Details["reason"]+" "+ev.Details["count"])
		}
		all := strings.Join(lines, "\n")
		for _, want := range []string{
			"ratelimit.episode 192.0.2.7/32 rate-limited 50",
			"access.denied.episode 2001:db8:1:2::/64 policy 50",
			"auth.failure.episode 192.0.2.7/32 bad-mac 64",
			"audit.dropped other refusals not attributed: hand-off ring full (flood) 36",
		} {
			if !strings.Contains(all, want) {
				t.Errorf("missing %q in\n%s", want, all)
			}
		}
	})
}

// BenchmarkRingOffer is the cost of one report that finds room, with the
// consumer's drain (every 4096 reports) included.
func BenchmarkRingOffer(b *testing.B) {
	r := NewRing(DefaultRingSize)
	a := netip.MustParseAddr("192.0.2.1")
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		r.Offer(a, KindNTP, 7)
		if i++; i == DefaultRingSize {
			r.drain(func(netip.Addr, Kind, uint8) {})
			i = 0
		}
	}
}
