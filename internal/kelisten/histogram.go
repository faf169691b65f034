package kelisten

import (
	"sync/atomic"
	"time"
)

// numBuckets is the number of finite latency buckets.
const numBuckets = 12

// latencyBounds are the buckets' upper bounds. A full NTS-KE over loopback
// costs about 1.5 ms of CPU (BENCHMARKS.md), a client across a continent
// adds two round trips of up to 100 ms each, and nts.DefaultTimeout cuts a
// session at 2 s: the bounds cover that span roughly geometrically.
func latencyBounds() [numBuckets]time.Duration {
	const ms = time.Millisecond
	return [numBuckets]time.Duration{
		ms, 2500 * time.Microsecond, 5 * ms, 10 * ms, 25 * ms, 50 * ms,
		100 * ms, 250 * ms, 500 * ms, time.Second, 2 * time.Second, 5 * time.Second,
	}
}

// histogram counts durations into fixed buckets with one atomic add per
// bucket hit and one for the sum, so sessions never wait on each other or
// on a scrape.
type histogram struct {
	counts [numBuckets + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumNs  atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for bounds := latencyBounds(); i < numBuckets && d > bounds[i]; i++ {
	}
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(d))
}

// Histogram is a snapshot of the session latency, in the shape Prometheus
// histograms take: cumulative counts of observations at or below each
// bound.
type Histogram struct {
	Bounds     [numBuckets]float64 // upper bounds, seconds
	Cumulative [numBuckets]uint64  // observations ≤ Bounds[i]
	Count      uint64              // all observations (the +Inf bucket)
	Sum        float64             // seconds
}

func (h *histogram) snapshot() Histogram {
	var s Histogram
	bounds := latencyBounds()
	for i := range numBuckets {
		s.Count += h.counts[i].Load()
		s.Bounds[i], s.Cumulative[i] = bounds[i].Seconds(), s.Count
	}
	s.Count += h.counts[numBuckets].Load()
	s.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return s
}
