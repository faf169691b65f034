package kelisten

import (
	"sync"
	"testing"
	"time"
)

// TestHistogramBuckets: a duration lands in the first bucket whose bound it
// does not exceed (Prometheus's "le"), beyond the last in +Inf only, and
// the snapshot is cumulative.
func TestHistogramBuckets(t *testing.T) {
	var h histogram
	for _, d := range []time.Duration{
		-time.Second, 0, time.Millisecond, // ≤ 1 ms, a negative reading counts as 0
		time.Millisecond + 1, // ≤ 2.5 ms
		2 * time.Second,      // ≤ 2 s
		time.Minute,          // +Inf
	} {
		h.observe(d)
	}
	s := h.snapshot()
	want := map[float64]uint64{0.001: 3, 0.0025: 4, 1: 4, 2: 5, 5: 5}
	for i, b := range s.Bounds {
		if w, ok := want[b]; ok && s.Cumulative[i] != w {
			t.Errorf("le=%g: %d, want %d", b, s.Cumulative[i], w)
		}
		if i > 0 && (b <= s.Bounds[i-1] || s.Cumulative[i] < s.Cumulative[i-1]) {
			t.Errorf("bucket %d not increasing: %+v", i, s)
		}
	}
	wantSum := (2*time.Millisecond + 1 + 2*time.Second + time.Minute).Seconds()
	if s.Count != 6 || s.Sum != wantSum {
		t.Errorf("count %d sum %g, want 6 and %g", s.Count, s.Sum, wantSum)
	}
}

// TestHistogramConcurrent: observations from many sessions at once are all
// counted while being read.
func TestHistogramConcurrent(t *testing.T) {
	var h histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.observe(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
		_ = h.snapshot()
	}
	wg.Wait()
	if s := h.snapshot(); s.Count != 8000 {
		t.Fatalf("count %d", s.Count)
	}
}
