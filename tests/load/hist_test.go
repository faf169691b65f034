package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestNearestRank(t *testing.T) {
	tests := []struct {
		p    float64
		n    uint64
		want uint64
	}{
		{50, 1, 1}, {50, 2, 1}, {50, 3, 2}, {50, 4, 2}, {99, 100, 99}, {99, 101, 100},
		{99.9, 1000, 999}, {99.9, 1001, 1000}, {100, 7, 7}, {0.0001, 10, 1}, {90, 10, 9},
		{33.333, 3, 1}, {250, 4, 4},
	}
	for _, tt := range tests {
		if got := nearestRank(tt.p, tt.n); got != tt.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", tt.p, tt.n, got, tt.want)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every value lands in a bucket whose upper bound is >= it and whose
	// predecessor's upper bound is < it, and the bound is within 1/64.
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(v uint64) {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d out of range", v, i)
		}
		up := histUpper(i)
		if up < v || (i > 0 && histUpper(i-1) >= v) {
			t.Fatalf("value %d in bucket %d with bounds (%d, %d]", v, i, histUpper(i-1), up)
		}
		if v >= histSub && float64(up-v) > float64(v)/histSub {
			t.Fatalf("value %d: bucket upper bound %d is more than 1/64 above", v, up)
		}
	}
	for v := range uint64(5000) {
		check(v)
	}
	for range 100000 {
		check(rng.Uint64() >> rng.UintN(64))
	}
	check(math.MaxUint64)
}

func TestHistogramPercentiles(t *testing.T) {
	var h Histogram
	if h.Percentile(50) != 0 || h.Count() != 0 {
		t.Fatal("empty histogram")
	}
	// Small exact values: 1..10 ns.
	for v := 1; v <= 10; v++ {
		h.Record(time.Duration(v))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{10, 1}, {50, 5}, {51, 6}, {90, 9}, {99, 10}, {100, 10}} {
		if got := h.Percentile(c.p); got != c.want {
			t.Errorf("1..10: p%v = %d, want %d", c.p, got, c.want)
		}
	}
	h.Record(-5) // counts as 0
	if h.Percentile(1) != 0 || h.Count() != 11 {
		t.Errorf("negative duration: p1 %v, count %d", h.Percentile(1), h.Count())
	}

	// Against exact nearest-rank percentiles of a seeded log-normal sample
	// of latencies around 100 µs.
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	var a, b Histogram
	vals := make([]time.Duration, 0, 50001)
	for i := range 50001 {
		d := time.Duration(math.Exp(rng.NormFloat64()*1.5) * 100e3)
		vals = append(vals, d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(vals)
	if a.Count() != uint64(len(vals)) || a.Max() != vals[len(vals)-1] {
		t.Fatalf("merged count %d max %v, want %d %v", a.Count(), a.Max(), len(vals), vals[len(vals)-1])
	}
	for _, p := range []float64{1, 25, 50, 90, 99, 99.9, 100} {
		exact := vals[nearestRank(p, uint64(len(vals)))-1]
		got := a.Percentile(p)
		if got < exact || float64(got-exact) > float64(exact)/histSub {
			t.Errorf("p%v = %v, exact %v: must be at most 1/64 above", p, got, exact)
		}
	}
}

func TestResultFinish(t *testing.T) {
	var c1, c2 Counters
	c1.Sent.Store(600)
	c1.Replies.Store(300)
	c1.KoD.Store(100)
	c2.Sent.Store(400)
	c2.Replies.Store(200)
	c2.Unmatched.Store(7)
	var h Histogram
	for v := 1; v <= 100; v++ {
		h.Record(time.Duration(v) * time.Microsecond)
	}
	var r Result
	r.finish([]*Counters{&c1, &c2}, &h, 2*time.Second, 2500*time.Millisecond)
	if r.Sent != 1000 || r.Replies != 500 || r.KoD != 100 || r.Unmatched != 7 {
		t.Fatalf("sums: %+v", r)
	}
	// 500 replies + 100 kisses of 1000: 50 % answered with time, 40 % lost.
	if r.AnsweredPct != 50 || r.LossPct != 40 {
		t.Errorf("answered %v %%, loss %v %%", r.AnsweredPct, r.LossPct)
	}
	// Sent over the sending time, replies over the time to the last reply.
	if r.SentPerSec != 500 || r.RepliesPerSec != 200 {
		t.Errorf("rates %v sent/s, %v replies/s", r.SentPerSec, r.RepliesPerSec)
	}
	if r.P50us < 50 || r.P50us > 51 || r.P99us < 99 || r.P99us > 100.6 || r.MaxUs != 100 {
		t.Errorf("latencies p50 %v p99 %v max %v", r.P50us, r.P99us, r.MaxUs)
	}
}
