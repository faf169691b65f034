package ratelimit

import (
	"math"
	"time"
)

// cell is one source's token bucket: golang.org/x/time/rate's Limiter
// arithmetic, step for step (advance, then AllowN(now, 1): take a token if
// the wait for it would be zero), for the table's one limit and burst.
// rate.Limiter itself carried a mutex (the bucket's lock covers the cell)
// and two time.Time values, whose location pointers made the garbage
// collector scan every entry of the table; a cell is 16 bytes of plain
// numbers. cell_test.go checks it against rate.Limiter on random traffic.
type cell struct {
	tokens float64
	last   int64 // UnixNano of the last token taken (rate.Limiter's last)
}

// allow is rate.Limiter.AllowN(now, 1) for limit tokens per second and a
// burst of burst, times in UnixNano. A clock that stepped back adds no
// tokens (advance treats an earlier now as no time passed).
func (c *cell) allow(now int64, limit, burst float64) bool {
	last := c.last
	if now < last {
		last = now
	}
	tokens := c.tokens + time.Duration(now-last).Seconds()*limit
	if tokens > burst {
		tokens = burst
	}
	tokens--
	if tokens < 0 && durationFromTokens(-tokens, limit) > 0 {
		return false
	}
	c.last, c.tokens = now, tokens
	return true
}

// durationFromTokens is rate.Limit.durationFromTokens: the time it takes
// to accumulate tokens at limit per second, capped as there.
func durationFromTokens(tokens, limit float64) time.Duration {
	d := tokens / limit * float64(time.Second)
	if d > math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}
