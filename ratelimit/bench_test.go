package ratelimit

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func BenchmarkAllow(b *testing.B) {
	b.Run("single", func(b *testing.B) {
		tb := prodTable(b, DefaultConfig())
		a := netip.MustParseAddr("192.0.2.1")
		now := t0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			tb.Allow(a, now)
		}
	})
	// Sources that all fit in the table: the lookup hits.
	b.Run("many-resident", func(b *testing.B) {
		tb := prodTable(b, DefaultConfig())
		addrs := make([]netip.Addr, DefaultSize/2)
		for i := range addrs {
			addrs[i] = addrN(uint64(i))
		}
		now, i := t0, 0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			tb.Allow(addrs[i%len(addrs)], now)
			i++
		}
	})
	// Every request from a new source: each one evicts (a spoofed flood).
	b.Run("many-evicting", func(b *testing.B) {
		tb := prodTable(b, DefaultConfig())
		now, n := t0, uint64(0)
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Microsecond)
			tb.Allow(addrN(n), now)
			n++
		}
	})
}

func BenchmarkAllowParallel(b *testing.B) {
	for _, tc := range []struct {
		name    string
		sources uint64
	}{{"one-source", 1}, {"resident", DefaultSize / 2}, {"evicting", 1 << 40}} {
		b.Run(tc.name, func(b *testing.B) {
			tb := prodTable(b, DefaultConfig())
			var seq atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				// Each goroutine starts elsewhere in the address sequence.
				n := seq.Add(1) * (1<<32 + 7919)
				now := t0
				for pb.Next() {
					now = now.Add(time.Microsecond)
					tb.Allow(addrN(n%tc.sources), now)
					n++
				}
			})
		})
	}
}

// BenchmarkTableMemory reports the heap a table takes at the default size
// and at one million entries (the op itself is New).
func BenchmarkTableMemory(b *testing.B) {
	for _, tc := range []struct {
		name string
		size int
	}{{"default", DefaultSize}, {"1M", 1 << 20}} {
		b.Run(tc.name, func(b *testing.B) {
			c := DefaultConfig()
			c.Size = tc.size
			var bytes uint64
			for b.Loop() {
				before := heapInUse()
				tb := prodTable(b, c)
				bytes = heapInUse() - before
				runtime.KeepAlive(tb)
			}
			b.ReportMetric(float64(bytes), "B/table")
			b.ReportMetric(float64(bytes)/float64(tc.size), "B/entry")
		})
	}
}

// BenchmarkFlood10M sends 10 million distinct spoofed sources through a
// default-size table and reports its entries, evictions and how much the
// heap and the memory obtained from the OS grew (both should be ~0).
func BenchmarkFlood10M(b *testing.B) {
	const distinct = 10_000_000
	for b.Loop() {
		tb := prodTable(b, DefaultConfig())
		now := flood(tb, 0, 4*DefaultSize, t0)
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		start := time.Now()
		flood(tb, 4*DefaultSize, distinct, now)
		elapsed := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		st := tb.Stats()
		b.ReportMetric(float64(st.Entries), "entries")
		b.ReportMetric(float64(st.Evictions), "evictions")
		b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)), "heap-growth-B")
		b.ReportMetric(float64(int64(m1.Sys)-int64(m0.Sys)), "sys-growth-B")
		b.ReportMetric(float64(elapsed.Nanoseconds())/distinct, "ns/source")
	}
}

// prodTable is the table as timegate builds it (leak draws from the
// runtime's generator, no lock), so that the benchmarks measure that.
func prodTable(b *testing.B, c Config) *Table {
	b.Helper()
	t, err := New(c)
	if err != nil {
		b.Fatal(err)
	}
	return t
}
