package upstream

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"
)

func TestPollSeparation(t *testing.T) {
	for _, c := range []struct {
		poll int8
		want time.Duration
	}{
		{-10, MinPollSeparation}, // below MinPollExp: still an eighth, clamped
		{-7, MinPollSeparation},  // 1/1024 s
		{-6, MinPollSeparation},  // 1/512 s, just under 2 ms
		{-5, 3906250 * time.Nanosecond},
		{-4, 7812500 * time.Nanosecond},
		{0, 125 * time.Millisecond},
		{1, MaxPollSeparation}, // 250 ms
		{6, MaxPollSeparation},
		{MaxPollExp, MaxPollSeparation},
		{127, MaxPollSeparation},
	} {
		if got := PollSeparation(c.poll); got != c.want {
			t.Errorf("PollSeparation(%d) = %v, want %v", c.poll, got, c.want)
		}
	}
}

func TestPollSpacingPlace(t *testing.T) {
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	ms := time.Millisecond
	for _, c := range []struct {
		name string
		last time.Time // zero: no poll sent yet
		wait time.Duration
		poll int8
		u    float64
		due  []time.Duration
		want time.Duration
	}{
		{name: "alone", wait: time.Second, poll: 6, want: time.Second},
		{name: "stretched", wait: time.Second, poll: 6, u: 0.5, want: 1010 * ms},
		{name: "u clamped", wait: time.Second, poll: 6, u: 7, want: 1020 * ms},
		{name: "another due at the same time", wait: time.Second, poll: 6, due: []time.Duration{time.Second}, want: 1200 * ms},
		{name: "another due just after", wait: time.Second, poll: 6, due: []time.Duration{1100 * ms}, want: 1300 * ms},
		{name: "another due just before", wait: time.Second, poll: 6, due: []time.Duration{900 * ms}, want: 1100 * ms},
		{name: "far enough", wait: time.Second, poll: 6, due: []time.Duration{800 * ms, 1200 * ms}, want: time.Second},
		{name: "a chain, unsorted", wait: time.Second, poll: 6, due: []time.Duration{1200 * ms, time.Second, 1400 * ms}, want: 1600 * ms},
		{name: "a gap that fits", wait: 0, poll: 6, due: []time.Duration{0, 200 * ms, 700 * ms}, want: 400 * ms},
		{name: "overdue", wait: 0, poll: 6, due: []time.Duration{-50 * ms}, want: 150 * ms},
		{name: "short poll, short separation", wait: 0, poll: -4, due: []time.Duration{0}, want: 7812500},
		{name: "the stretch applies to the separation", wait: 0, poll: 6, u: 0.5, due: []time.Duration{0}, want: 202 * ms},
		{name: "just polled", last: at(-50 * ms), wait: 0, poll: 6, want: 150 * ms},
		{name: "polled long enough ago", last: at(-300 * ms), wait: 0, poll: 6, want: 0},
		{name: "the wait is longer anyway", last: at(-50 * ms), wait: 160 * ms, poll: 6, want: 160 * ms},
		{name: "negative wait", wait: -time.Second, poll: 6, want: 0},
	} {
		var p PollSpacing
		if !c.last.IsZero() {
			p.Polled(c.last)
		}
		var due []time.Time
		for _, d := range c.due {
			due = append(due, at(d))
		}
		if got := p.Place(now, c.wait, c.poll, c.u, due).Sub(now); got != c.want {
			t.Errorf("%s: placed at +%v, want +%v", c.name, got, c.want)
		}
	}
}

// TestPollSpacingProperty: wherever the other polls are, a placed poll is
// never earlier than asked, and a separation from each of them.
func TestPollSpacingProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	for range 20000 {
		var p PollSpacing
		poll := int8(r.IntN(12) - 7)
		wait := time.Duration(r.Int64N(int64(4 * time.Second)))
		u := r.Float64()
		due := make([]time.Time, r.IntN(12))
		for i := range due {
			due[i] = now.Add(time.Duration(r.Int64N(int64(5*time.Second)) - int64(time.Second)))
		}
		got := p.Place(now, wait, poll, u, due)
		stretch := 1 + u*PollRandomness
		if min := now.Add(time.Duration(float64(wait) * stretch)); got.Before(min) {
			t.Fatalf("placed at %v, before the stretched wait %v", got.Sub(now), min.Sub(now))
		}
		sep := time.Duration(float64(PollSeparation(poll)) * stretch)
		for _, d := range due {
			if gap := got.Sub(d).Abs(); gap < sep {
				t.Fatalf("placed at %v, %v from a poll due at %v (separation %v)", got.Sub(now), gap, d.Sub(now), sep)
			}
		}
	}
}

func TestRandomFraction(t *testing.T) {
	if f := RandomFraction(bytes.NewReader(make([]byte, 8))); f != 0 {
		t.Errorf("zero bytes: %v", f)
	}
	if f := RandomFraction(bytes.NewReader(bytes.Repeat([]byte{0xff}, 8))); f >= 1 || f < 0.999 {
		t.Errorf("all ones: %v", f)
	}
	if f := RandomFraction(iotest.ErrReader(errors.New("no entropy"))); f != 0 {
		t.Errorf("failing reader: %v", f)
	}
}
