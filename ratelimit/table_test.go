package ratelimit

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// t0 is an arbitrary start of simulated time.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// newTable builds a table whose leak draws come from a fixed seed (behind
// a lock: the concurrent tests and parallel benchmarks draw from several
// goroutines).
func newTable(tb testing.TB, c Config, seed uint64) *Table {
	tb.Helper()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 0x7469_6d65_6761_7465))
	t, err := NewWithDraw(c, func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return rng.Uint64()
	})
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// addrN returns the n-th of a sequence of distinct IPv4 (even n) and IPv6
// (odd n) host addresses, distinct after /32 and /64 aggregation.
func addrN(n uint64) netip.Addr {
	if n%2 == 0 {
		return netip.AddrFrom4([4]byte{byte(n >> 25), byte(n >> 17), byte(n >> 9), byte(n >> 1)})
	}
	var a [16]byte
	a[0], a[1] = 0x20, 0x01
	for i := range 6 {
		a[2+i] = byte(n >> (8 * i))
	}
	a[15] = 1
	return netip.AddrFrom16(a)
}

func count(tb *Table, a netip.Addr, now time.Time, n int) map[Verdict]int {
	got := map[Verdict]int{}
	for range n {
		got[tb.Allow(a, now)]++
	}
	return got
}

func TestBurstAlwaysServed(t *testing.T) {
	for _, interval := range []int{MinInterval, -4, 0, 3, MaxInterval} {
		for _, burst := range []int{1, 8, MaxBurst} {
			c := DefaultConfig()
			c.Interval, c.Burst, c.Leak = interval, burst, MaxLeak
			tb := newTable(t, c, 1)
			for n := range uint64(50) {
				a := addrN(n)
				// A whole burst at one instant: every request is served.
				if got := count(tb, a, t0, burst); got[Pass] != burst {
					t.Fatalf("interval %d burst %d source %v: %v, want %d passes", interval, burst, a, got, burst)
				}
				// The next one is over the limit.
				if v := tb.Allow(a, t0); v == Pass {
					t.Fatalf("interval %d burst %d source %v: request %d passed", interval, burst, a, burst+1)
				}
			}
		}
	}
}

func TestSteadySourceServed(t *testing.T) {
	for _, interval := range []int{MinInterval, -10, -4, 0, 3, 6, MaxInterval} {
		// Rounded up to whole nanoseconds: 2^-10 s is not a whole number.
		period := time.Duration(math.Ceil(math.Ldexp(float64(time.Second), interval)))
		for _, tc := range []struct {
			name    string
			spacing time.Duration
			drain   bool // spend the burst first
		}{
			{"at rate", period, false},
			{"at rate after burst", period, true},
			{"under rate after burst", period * 3 / 2, true},
		} {
			c := DefaultConfig()
			c.Interval = interval
			tb := newTable(t, c, 2)
			a := netip.MustParseAddr("192.0.2.7")
			now := t0
			if tc.drain {
				count(tb, a, now, c.Burst)
			}
			for i := range 5000 {
				now = now.Add(tc.spacing)
				if v := tb.Allow(a, now); v != Pass {
					t.Fatalf("interval %d %s: request %d got %v", interval, tc.name, i, v)
				}
			}
		}
	}
}

func TestOverRateIsLimited(t *testing.T) {
	c := DefaultConfig() // one per 8 s, burst 8
	tb := newTable(t, c, 3)
	a := netip.MustParseAddr("2001:db8::1")
	now, passed := t0, 0
	const n = 8000 // one request per second for 8000 s
	for range n {
		if tb.Allow(a, now) == Pass {
			passed++
		}
		now = now.Add(time.Second)
	}
	// The bucket allows Burst plus one per 8 s over the run.
	if want := c.Burst + n/8; passed < want-1 || passed > want+1 {
		t.Errorf("passed %d of %d, want %d±1", passed, n, want)
	}
}

// TestLeakRatio: the share of over-limit requests answered follows a
// binomial(n, 2^-leak); the bound is 6 standard deviations, so with a fixed
// seed the test is deterministic and with any seed it fails about once in
// 10^9 runs.
func TestLeakRatio(t *testing.T) {
	const n = 40000
	for leak := MinLeak; leak <= MaxLeak; leak++ {
		c := DefaultConfig()
		c.Leak = leak
		seed := uint64(1000 + leak)
		tb := newTable(t, c, seed)
		a := netip.MustParseAddr("198.51.100.1")
		count(tb, a, t0, c.Burst)
		got := count(tb, a, t0, n)
		p := math.Ldexp(1, -leak)
		mean, sd := n*p, math.Sqrt(n*p*(1-p))
		t.Logf("leak %d seed %d: %d of %d leaked (mean %.0f, sd %.1f)", leak, seed, got[Leak], n, mean, sd)
		if math.Abs(float64(got[Leak])-mean) > 6*sd {
			t.Errorf("leak %d: %d of %d leaked, want %.0f±%.0f", leak, got[Leak], n, mean, 6*sd)
		}
		if got[Pass] != 0 || got[KoD] != 0 || got[Leak]+got[Drop] != n {
			t.Errorf("leak %d: verdicts %v, want only leak and drop", leak, got)
		}
		if st := tb.Stats(); st.Leaked != uint64(got[Leak]) || st.Dropped != uint64(got[Drop]) || st.Passed != uint64(c.Burst) {
			t.Errorf("leak %d: stats %+v disagree with verdicts %v", leak, st, got)
		}
	}
}

func TestKoDIsLimited(t *testing.T) {
	for _, interval := range []int{-4, 3, 5} {
		c := DefaultConfig()
		c.Interval, c.KoD = interval, true
		tb := newTable(t, c, 4)
		gap := max(MinKissSpacing, time.Duration(math.Ldexp(float64(time.Second), interval)))
		a := netip.MustParseAddr("203.0.113.9")
		count(tb, a, t0, c.Burst)
		// A flood at one instant: exactly one kiss, however long it lasts.
		if got := count(tb, a, t0, 10000); got[KoD] != 1 {
			t.Errorf("interval %d: %v, want exactly one kiss", interval, got)
		}
		// Just before the kiss interval ends, still no second kiss.
		now := t0.Add(gap - time.Nanosecond)
		if got := count(tb, a, now, 1000); got[KoD] != 0 {
			t.Errorf("interval %d: kiss again after %v: %v", interval, gap-time.Nanosecond, got)
		}
		// Once it has passed, one more.
		now = t0.Add(gap)
		if got := count(tb, a, now, 1000); got[KoD] != 1 {
			t.Errorf("interval %d: after %v: %v, want one kiss", interval, gap, got)
		}
	}
}

func TestNoKoDUnlessConfigured(t *testing.T) {
	tb := newTable(t, DefaultConfig(), 5)
	a := netip.MustParseAddr("203.0.113.9")
	for i := range 100 {
		if got := count(tb, a, t0.Add(time.Duration(i)*time.Minute), 100); got[KoD] != 0 {
			t.Fatalf("KoD verdict with KoD off: %v", got)
		}
	}
}

// exhausted reports whether b, fresh, is limited after a drained it.
func sharesBucket(t *testing.T, c Config, a, b netip.Addr) bool {
	t.Helper()
	tb := newTable(t, c, 6)
	count(tb, a, t0, c.Burst)
	return tb.Allow(b, t0) != Pass
}

func TestAggregation(t *testing.T) {
	def := DefaultConfig()
	v4by24 := DefaultConfig()
	v4by24.PrefixV4 = 24
	v6by48 := DefaultConfig()
	v6by48.PrefixV6 = 48
	v6by128 := DefaultConfig()
	v6by128.PrefixV6 = 128
	tests := []struct {
		name string
		c    Config
		a, b string
		same bool
	}{
		{"same IPv6 /64", def, "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", true},
		{"other IPv6 /64", def, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"IPv6 /48 configured", v6by48, "2001:db8:1:2::1", "2001:db8:1:3::1", true},
		{"IPv6 /48 boundary", v6by48, "2001:db8:1:2::1", "2001:db8:2:2::1", false},
		{"IPv6 /128 configured", v6by128, "2001:db8::1", "2001:db8::2", false},
		{"IPv6 zones ignored", def, "fe80::1%eth0", "fe80::1%eth1", true},
		{"IPv4 hosts by default", def, "192.0.2.1", "192.0.2.2", false},
		{"IPv4 /24 configured", v4by24, "192.0.2.1", "192.0.2.254", true},
		{"IPv4 /24 boundary", v4by24, "192.0.2.1", "192.0.3.1", false},
		{"IPv4-mapped is IPv4", def, "::ffff:192.0.2.1", "192.0.2.1", true},
		{"IPv4-mapped /24", v4by24, "::ffff:192.0.2.1", "192.0.2.200", true},
		{"IPv4 and IPv6 never mix", def, "0.0.0.0", "::", false},
		{"IPv4 and IPv4-compatible IPv6 differ", def, "192.0.2.1", "::192.0.2.1", false},
	}
	for _, tt := range tests {
		a, b := netip.MustParseAddr(tt.a), netip.MustParseAddr(tt.b)
		if got := sharesBucket(t, tt.c, a, b); got != tt.same {
			t.Errorf("%s: %v then %v share a bucket = %v, want %v", tt.name, a, b, got, tt.same)
		}
	}
}

func TestPortNeverMatters(t *testing.T) {
	c := DefaultConfig()
	tb := newTable(t, c, 7)
	// The edge hands Allow the address of the datagram's AddrPort: a source
	// cycling ports draws from one bucket.
	for port := range uint16(c.Burst) {
		ap := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 1024+port)
		if v := tb.Allow(ap.Addr(), t0); v != Pass {
			t.Fatalf("port %d: %v inside the burst", ap.Port(), v)
		}
	}
	ap := netip.MustParseAddrPort("192.0.2.1:65000")
	if v := tb.Allow(ap.Addr(), t0); v == Pass {
		t.Fatal("a new port got a new bucket")
	}
}

func TestInvalidAddressDropped(t *testing.T) {
	tb := newTable(t, DefaultConfig(), 8)
	if v := tb.Allow(netip.Addr{}, t0); v != Drop {
		t.Fatalf("Allow(invalid) = %v, want drop", v)
	}
	if st := tb.Stats(); st.Dropped != 1 || st.Entries != 0 {
		t.Fatalf("stats %+v, want one drop and no entry", st)
	}
}

func TestClockStepBackGivesNoTokens(t *testing.T) {
	tb := newTable(t, DefaultConfig(), 9)
	a := netip.MustParseAddr("192.0.2.1")
	count(tb, a, t0, 8)
	for _, back := range []time.Duration{time.Second, time.Hour, 24 * time.Hour} {
		if got := count(tb, a, t0.Add(-back), 100); got[Pass] != 0 {
			t.Fatalf("clock stepped back %v: %v", back, got)
		}
	}
}

func TestEvictedSourceStartsFresh(t *testing.T) {
	c := DefaultConfig()
	c.Size = MinSize
	tb := newTable(t, c, 10)
	a := netip.MustParseAddr("192.0.2.1")
	count(tb, a, t0, c.Burst+5)
	// Newer sources take every slot; a, seen least recently, goes.
	for n := range uint64(100) {
		tb.Allow(addrN(n+1000), t0.Add(time.Second))
	}
	st := tb.Stats()
	if st.Entries != MinSize || st.Evictions != 100+1-MinSize {
		t.Fatalf("stats %+v, want %d entries and %d evictions", st, MinSize, 101-MinSize)
	}
	// Back, a gets a fresh, full bucket: the burst passes.
	if got := count(tb, a, t0.Add(2*time.Second), c.Burst); got[Pass] != c.Burst {
		t.Fatalf("returning evicted source: %v, want a full burst", got)
	}
}

// TestActiveSourceSurvivesFlood: a flood of fresh spoofed sources evicts idle
// entries, not the busy source being limited, which would otherwise get a
// fresh burst each time it is evicted.
func TestActiveSourceSurvivesFlood(t *testing.T) {
	c := DefaultConfig()
	tb := newTable(t, c, 11)
	abuser := netip.MustParseAddr("198.51.100.66")
	now, passed := t0, 0
	for n := range uint64(200000) {
		now = now.Add(10 * time.Microsecond)
		tb.Allow(addrN(n), now)
		if n%4 == 0 && tb.Allow(abuser, now) == Pass {
			passed++
		}
	}
	// 2 s of abuse at 25000/s: the burst plus a token or so.
	if passed > c.Burst+1 {
		t.Errorf("abuser passed %d times during the flood, want <= %d", passed, c.Burst+1)
	}
	if st := tb.Stats(); st.Entries != c.Size {
		t.Errorf("entries %d, want %d", st.Entries, c.Size)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := DefaultConfig()
	c.Size = 1024
	c.KoD = true
	tb := newTable(t, c, 12)
	const workers, per = 8, 20000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			now := t0
			for i := range per {
				now = now.Add(time.Millisecond)
				// 20000 sources: the hash seed is random, and with 3000
				// (23 per 8-slot bucket on average) a bucket left with
				// fewer than 8 sources now and then made "full" fail.
				v := tb.Allow(addrN(uint64((i*7+w)%20000)), now)
				if v > KoD {
					t.Errorf("verdict %d", v)
					return
				}
			}
		})
	}
	wg.Add(1)
	go func() { // Stats while Allow runs
		defer wg.Done()
		for range 100 {
			if st := tb.Stats(); st.Entries > st.Capacity {
				t.Errorf("entries %d > capacity %d", st.Entries, st.Capacity)
			}
		}
	}()
	wg.Wait()
	st := tb.Stats()
	if total := st.Passed + st.Dropped + st.Leaked + st.KoD; total != workers*per {
		t.Errorf("counted %d verdicts, want %d (%+v)", total, workers*per, st)
	}
	if st.Entries != c.Size {
		t.Errorf("entries %d, want %d", st.Entries, c.Size)
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	tb := newTable(t, DefaultConfig(), 13)
	now, n := t0, uint64(0)
	allocs := testing.AllocsPerRun(10000, func() {
		n++
		now = now.Add(time.Microsecond)
		tb.Allow(addrN(n), now)
	})
	if allocs != 0 {
		t.Fatalf("Allow allocates %.1f times per call", allocs)
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{Pass: "pass", Drop: "drop", Leak: "leak", KoD: "kod", 9: "unknown"} {
		if v.String() != want {
			t.Errorf("Verdict(%d).String() = %q, want %q", v, v.String(), want)
		}
	}
}

// TestTop: the busiest prefixes come first, counted per aggregation prefix, with the
// requests over the limit; the list is bounded by n.
func TestTop(t *testing.T) {
	cfg := Config{Interval: 0, Burst: 2, Leak: 4, Size: 64, PrefixV4: 24, PrefixV6: 64}
	tb, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	for range 5 {
		tb.Allow(netip.MustParseAddr("192.0.2.7"), now)
		tb.Allow(netip.MustParseAddr("192.0.2.9"), now) // same /24
	}
	tb.Allow(netip.MustParseAddr("2001:db8::1"), now)
	top := tb.Top(5)
	if len(top) != 2 {
		t.Fatalf("Top = %v, want 2 entries", top)
	}
	if top[0].Prefix != netip.MustParsePrefix("192.0.2.0/24") || top[0].Requests != 10 || top[0].Limited != 8 {
		t.Errorf("top[0] = %+v, want 192.0.2.0/24 with 10 requests, 8 over the burst of 2", top[0])
	}
	if top[1].Prefix != netip.MustParsePrefix("2001:db8::/64") || top[1].Requests != 1 || top[1].Limited != 0 {
		t.Errorf("top[1] = %+v", top[1])
	}
	if !top[0].Seen.Equal(now) {
		t.Errorf("Seen = %v, want %v", top[0].Seen, now)
	}
	if got := tb.Top(1); len(got) != 1 || got[0].Prefix != top[0].Prefix {
		t.Errorf("Top(1) = %v", got)
	}
}

// BenchmarkTop is `gatectl clients` on a full default-size table: one shard is locked at a
// time, so the packet path waits at most one shard's scan.
func BenchmarkTop(b *testing.B) {
	tb, err := New(Config{Interval: 3, Burst: 8, Leak: 2, Size: 4096, PrefixV4: 32, PrefixV6: 64})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	for i := range 1 << 16 {
		tb.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(tb.Top(20)) != 20 {
			b.Fatal("short")
		}
	}
}
