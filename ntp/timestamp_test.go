package ntp

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestTime64Epochs(t *testing.T) {
	cases := []struct {
		name string
		t    time.Time
		secs uint32
	}{
		{"ntp epoch 1900", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{"unix epoch", time.Unix(0, 0), unixToNTP},
		{"last second of era 0", time.Date(2036, 2, 7, 6, 28, 15, 0, time.UTC), 0xffffffff},
		{"era 1 starts 2036", time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC), 0},
		{"2106 unix 32-bit wrap", time.Date(2106, 2, 7, 6, 28, 16, 0, time.UTC), uint32((4294967296 + unixToNTP) % eraSpan)},
	}
	for _, c := range cases {
		ts := Time64From(c.t)
		if ts.Seconds() != c.secs || ts.Fraction() != 0 {
			t.Errorf("%s: Time64From = %#x, want seconds %#x", c.name, uint64(ts), c.secs)
		}
		if got := ts.Time(c.t.Add(10 * 365 * 24 * time.Hour)); !got.Equal(c.t) {
			t.Errorf("%s: round trip with later pivot = %v, want %v", c.name, got, c.t)
		}
		if got := ts.Time(c.t.Add(-10 * 365 * 24 * time.Hour)); !got.Equal(c.t) {
			t.Errorf("%s: round trip with earlier pivot = %v, want %v", c.name, got, c.t)
		}
	}
}

func TestTime64RoundTripRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	lo := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for range 100000 {
		tt := time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9)).UTC()
		pivot := tt.Add(time.Duration(rng.Int64N(int64(60*365*24*time.Hour))) - 30*365*24*time.Hour)
		got := Time64From(tt).Time(pivot)
		if d := got.Sub(tt); d < -time.Nanosecond || d > time.Nanosecond {
			t.Fatalf("round trip %v (pivot %v) = %v, off by %v", tt, pivot, got, d)
		}
	}
}

func TestTime64SubAcrossEra(t *testing.T) {
	a := time.Date(2036, 2, 7, 6, 28, 15, 500_000_000, time.UTC)
	b := a.Add(1500 * time.Millisecond) // in era 1
	ta, tb := Time64From(a), Time64From(b)
	if tb > ta {
		t.Fatalf("expected era wrap between %#x and %#x", uint64(ta), uint64(tb))
	}
	if d := tb.Sub(ta); d != 1500*time.Millisecond {
		t.Errorf("Sub across era = %v, want 1.5s", d)
	}
	if d := ta.Sub(tb); d != -1500*time.Millisecond {
		t.Errorf("negative Sub across era = %v, want -1.5s", d)
	}
	if got := ta.Add(1500 * time.Millisecond); got != tb {
		t.Errorf("Add across era = %#x, want %#x", uint64(got), uint64(tb))
	}
}

func TestTime32(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want Time32
	}{
		{0, 0},
		{-time.Second, 0},
		{time.Second, 1 << 16},
		{500 * time.Millisecond, 1 << 15},
		{100000 * time.Hour, 0xffffffff},
	}
	for _, c := range cases {
		if got := Time32From(c.d); got != c.want {
			t.Errorf("Time32From(%v) = %#x, want %#x", c.d, got, c.want)
		}
	}
	for _, d := range []time.Duration{time.Millisecond, 1234 * time.Microsecond, 3 * time.Second} {
		back := Time32From(d).Duration()
		if diff := back - d; diff < -16*time.Microsecond || diff > 16*time.Microsecond {
			t.Errorf("Time32 round trip %v = %v", d, back)
		}
	}
}

// TestServedTime64MatchesServe: ServedState.Time64, the served time in
// integer arithmetic, equals Time64From(Serve(sys)) for random states and
// readings (a seeded loop; the seed is logged): offsets of either sign
// with a nanosecond part and a carry either way, frequencies of ±500 ppm
// and beyond, bases before and after sys, readings with and without a
// monotonic clock reading (time.Now's) and in a leap second's ramp.
func TestServedTime64MatchesServe(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	now := time.Now()
	for i := range 50000 {
		sys := time.Unix(1_700_000_000+rng.Int64N(2_000_000_000), rng.Int64N(1e9))
		if i%4 == 0 {
			sys = now.Add(time.Duration(rng.Int64N(int64(time.Hour)))) // monotonic reading kept
		}
		st := &ServedState{Offset: time.Duration(rng.Int64N(int64(48*time.Hour))) - 24*time.Hour}
		switch i % 3 {
		case 1:
			st.Freq = (rng.Float64() - 0.5) * 1e-3
			st.Base = sys.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))
			if i%2 == 0 {
				st.Base = now // monotonic against monotonic, as Sub does
			}
		case 2:
			st.Freq = (rng.Float64() - 0.5) * 2
			st.Base = sys.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		}
		if i%7 == 0 {
			st.LeapAt, st.LeapSec = sys.Add(time.Duration(rng.Int64N(int64(2*time.Second)))-time.Second), 1
			st.LeapBase = time.Second
		}
		if got, want := st.Time64(sys), Time64From(st.Serve(sys)); got != want {
			t.Fatalf("state %+v at %v: Time64 %#x, Time64From(Serve) %#x", st, sys, uint64(got), uint64(want))
		}
	}
}
