package main

import (
	"math"
	"math/bits"
	"time"
)

// Histogram counts durations in log-linear buckets: exact below 64 ns, then
// 64 buckets per power of two, so a reported percentile is at most 1/64
// (1.6 %) above the true one. It is fixed-size (about 30 KB) and never
// allocates while recording.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    int64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits // buckets per power of two
	histBuckets = histSub + (64-histSubBits)*histSub
)

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits - 1 // v>>e is in [64, 128)
	return histSub + e*histSub + int(v>>e) - histSub
}

// histUpper is the largest value that falls into bucket i.
func histUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	e := (i - histSub) / histSub
	m := uint64(i-histSub)%histSub + histSub
	return (m+1)<<e - 1
}

// Record adds one duration; negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[histIndex(uint64(v))]++
	h.n++
	h.max = max(h.max, v)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest recorded duration.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100): the
// smallest recorded value with at least p % of the values at or below it,
// rounded up to its bucket's upper bound (never above Max). It is 0 when
// nothing was recorded.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 || p <= 0 {
		return 0
	}
	rank := nearestRank(p, h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histUpper(i), uint64(h.max)))
		}
	}
	return time.Duration(h.max)
}

// nearestRank is ceil(p/100 * n), clamped to 1..n, computed in integers
// with p rounded to 1/1000 of a percent, so that 99.9 % of 1000 is 999 and not
// a floating-point hair above it.
func nearestRank(p float64, n uint64) uint64 {
	const scale = 100 * 1000
	pm := uint64(math.Round(min(p, 100) * 1000))
	hi, lo := bits.Mul64(pm, n)
	q, rem := bits.Div64(hi, lo, scale)
	if rem != 0 {
		q++
	}
	return min(max(q, 1), n)
}
