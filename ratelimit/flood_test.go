package ratelimit

import (
	"runtime"
	"testing"
	"time"
)

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// flood sends one request from each of n distinct sources, addrN(from)
// on, 1 µs apart.
func flood(tb *Table, from, n uint64, now time.Time) time.Time {
	for i := range n {
		now = now.Add(time.Microsecond)
		tb.Allow(addrN(from+i), now)
	}
	return now
}

// TestSpoofedFloodMemoryFlat: a table of N entries under a flood of many
// more distinct (spoofed) sources keeps N entries and its memory does not
// grow. BenchmarkFlood10M runs the same with 10 million sources.
func TestSpoofedFloodMemoryFlat(t *testing.T) {
	distinct := uint64(1_000_000)
	if testing.Short() || raceEnabled {
		distinct = 100_000
	}
	for _, size := range []int{DefaultSize, 1 << 16} {
		c := DefaultConfig()
		c.Size = size
		tb := newTable(t, c, 20)
		// Warm up: fill the table so that its pages are all touched.
		warm := uint64(4 * size)
		now := flood(tb, 0, warm, t0)
		before := heapInUse()
		// Sources the warm-up did not use: one the table still held would
		// take no eviction, and which ones it holds depends on the table's
		// hash seed, drawn at random (the count was 4 short once).
		flood(tb, warm, distinct, now)
		after := heapInUse()
		st := tb.Stats()
		if st.Entries != size {
			t.Errorf("size %d: %d entries after %d sources, want %d", size, st.Entries, distinct, size)
		}
		if want := uint64(4*size) + distinct - uint64(size); st.Evictions != want {
			t.Errorf("size %d: %d evictions, want %d", size, st.Evictions, want)
		}
		growth := int64(after) - int64(before)
		t.Logf("size %d: %d distinct sources, heap %d -> %d bytes (%+d)", size, distinct, before, after, growth)
		// The table allocates nothing after New; allow a little runtime noise.
		if growth > 64<<10 {
			t.Errorf("size %d: heap grew by %d bytes under the flood", size, growth)
		}
		runtime.KeepAlive(tb)
	}
}
