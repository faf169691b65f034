package ratelimit

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestCellMatchesRateLimiter: on random traffic (bursts, pauses, clock
// steps back) a cell takes exactly the decisions golang.org/x/time/rate's
// Limiter takes, for every interval and burst chrony allows at the edges.
func TestCellMatchesRateLimiter(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, interval := range []int{MinInterval, -6, 0, 3, MaxInterval} {
		for _, burst := range []int{MinBurst, 8, MaxBurst} {
			limit := math.Ldexp(1, -interval)
			lim := rate.NewLimiter(rate.Limit(limit), burst)
			ns := int64(1_700_000_000) * int64(time.Second)
			c := cell{tokens: float64(burst), last: ns}
			lim.AllowN(time.Unix(0, ns), 0) // both start full at ns
			for i := range 20000 {
				switch r := rng.IntN(100); {
				case r < 2:
					ns -= rng.Int64N(int64(time.Second)) // the clock steps back
				case r < 10:
					ns += rng.Int64N(int64(math.Ldexp(float64(time.Second), interval+2)))
				default:
					ns += rng.Int64N(int64(math.Ldexp(float64(time.Second), interval)) / 4)
				}
				want := lim.AllowN(time.Unix(0, ns), 1)
				if got := c.allow(ns, limit, float64(burst)); got != want {
					t.Fatalf("interval %d burst %d request %d at %d: cell %v, rate.Limiter %v", interval, burst, i, ns, got, want)
				}
			}
		}
	}
}
