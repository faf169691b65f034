package harness

import (
	"fmt"
	"testing"
	"time"
)

func TestParseDelayLineStats(t *testing.T) {
	s, err := parseDelayLineStats("delayline: stats received=10 forwarded=7 dropped=2 oversize=1 writeerrors=0 maxqueued=3 unstamped=5 latemean=1.5µs latemax=2ms late50us=4\n")
	want := DelayLineStats{Received: 10, Forwarded: 7, Dropped: 2, Oversize: 1, MaxQueued: 3, Unstamped: 5, LateMean: 1500 * time.Nanosecond, LateMax: 2 * time.Millisecond, Late50: 4}
	if err != nil || s != want {
		t.Errorf("got %+v, %v; want %+v", s, err, want)
	}
	for _, bad := range []string{
		"",
		"delayline: stats received=10",
		"delayline: stats forwarded=7 received=10 dropped=2 oversize=1 writeerrors=0 maxqueued=3 unstamped=5 latemean=0s latemax=0s late50us=0",
		"delayline: stats received=-1 forwarded=7 dropped=2 oversize=1 writeerrors=0 maxqueued=3 unstamped=5 latemean=0s latemax=0s late50us=0",
		"delayline: stats received=1 forwarded=7 dropped=2 oversize=1 writeerrors=0 maxqueued=3 unstamped=5 latemean=soon latemax=0s late50us=0",
	} {
		if s, err := parseDelayLineStats(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, s)
		}
	}
}

// The stats line is the delayline process's output, read by tests: whatever it holds,
// parsing returns a value or an error, and a line the process would print reads back.
func FuzzParseDelayLineStats(f *testing.F) {
	f.Add("delayline: stats received=10 forwarded=7 dropped=2 oversize=1 writeerrors=0 maxqueued=3 unstamped=5 latemean=1.5µs latemax=2ms late50us=4")
	f.Add("delayline: stats received=0 forwarded=0 dropped=0 oversize=0 writeerrors=0 maxqueued=0 unstamped=0 latemean=0s latemax=0s late50us=0")
	f.Add("delayline: stats a=b")
	f.Fuzz(func(t *testing.T, line string) {
		s, err := parseDelayLineStats(line)
		if err != nil {
			return
		}
		again := fmt.Sprintf("delayline: stats received=%d forwarded=%d dropped=%d oversize=%d writeerrors=%d maxqueued=%d unstamped=%d latemean=%v latemax=%v late50us=%d",
			s.Received, s.Forwarded, s.Dropped, s.Oversize, s.WriteErrors, s.MaxQueued, s.Unstamped, s.LateMean, s.LateMax, s.Late50)
		if s2, err := parseDelayLineStats(again); err != nil || s2 != s {
			t.Errorf("%q -> %+v -> %q -> %+v, %v", line, s, again, s2, err)
		}
	})
}
