package upstream

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestDriftRoundTrip(t *testing.T) {
	d := Drift{Freq: -12.345678e-6, Skew: 0.0123e-6, At: t0}
	b, _ := d.AppendText(nil)
	got, err := ParseDrift(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if math.Abs(got.Freq-d.Freq) > 1e-12 || math.Abs(got.Skew-d.Skew) > 1e-12 || !got.At.Equal(d.At) {
		t.Fatalf("round trip: %+v, want %+v", got, d)
	}
}

func TestParseDriftRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       error
	}{
		{"chronyd's", "          -21.048730             0.092612\n", ErrDriftChrony},
		{"ntpd's", "-21.048\n", ErrDriftChrony},
		{"empty", "", ErrDriftFormat},
		{"no header", "1.0 0.1 1700000000\n", ErrDriftFormat},
		{"other header", "# x\n1.0 0.1 1700000000\n", ErrDriftFormat},
		{"two values", driftHeader + "\n1.0 0.1\n", ErrDriftFormat},
		{"NaN", driftHeader + "\nNaN 0.1 1700000000\n", ErrDriftFormat},
		{"extra line", driftHeader + "\n1.0 0.1 1700000000\n1\n", ErrDriftFormat},
		{"negative time", driftHeader + "\n1.0 0.1 -5\n", ErrDriftFormat},
		{"huge", driftHeader + "\n" + string(make([]byte, MaxDriftFileSize)), ErrDriftFormat},
	} {
		if _, err := ParseDrift([]byte(tc.data)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestDriftUncertaintyAges(t *testing.T) {
	d := Drift{Freq: 3e-6, Skew: 0.05e-6, At: t0}
	u, err := d.Uncertainty(t0, DefaultMaxFreq)
	if err != nil || u != 0.05e-6 {
		t.Fatalf("fresh: %v %v", u, err)
	}
	u, err = d.Uncertainty(t0.Add(time.Hour), DefaultMaxFreq)
	if err != nil || math.Abs(u-1.05e-6) > 1e-12 {
		t.Fatalf("an hour old: %v ppm %v, want 1.05 ppm", u*1e6, err)
	}
	if u, _ := (Drift{Freq: 3e-6, At: t0}).Uncertainty(t0, DefaultMaxFreq); u != MinSkew {
		t.Errorf("zero skew claimed as %v, want MinSkew", u)
	}
	for _, tc := range []struct {
		name string
		d    Drift
		at   time.Time
		want error
	}{
		{"too old", d, t0.Add(MaxDriftAge + time.Second), ErrDriftStale},
		{"from the future", d, t0.Add(-2 * time.Minute), ErrDriftStale},
		{"beyond MaxFreq", Drift{Freq: 600e-6, Skew: 1e-6, At: t0}, t0, ErrDriftValue},
		{"no better than cold", Drift{Freq: 1e-6, Skew: 499e-6, At: t0}, t0.Add(time.Hour), ErrDriftValue},
		{"negative skew", Drift{Freq: 1e-6, Skew: -1e-6, At: t0}, t0, ErrDriftValue},
	} {
		if _, err := tc.d.Uncertainty(tc.at, DefaultMaxFreq); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// driftingEstimates feeds c estimates every step for span of a system clock that runs
// 10 ppm slow (served − system grows at +10 ppm), each off by ±noise in turn (a path's
// noise), and returns the last status.
func driftingEstimates(t *testing.T, c *SoftClock, span, step, noise time.Duration) Status {
	t.Helper()
	const freq = 10e-6
	var st Status
	for i, dt := 0, time.Duration(0); dt <= span; i, dt = i+1, dt+step {
		at := t0.Add(dt)
		n := noise
		if i%2 == 1 {
			n = -noise
		}
		if err := c.Update(at, estimate(at, dur(freq*dt.Seconds())+n)); err != nil {
			t.Fatal(err)
		}
		st = c.Status(at.Add(time.Second))
	}
	return st
}

// A restored drift runs the clock at the saved frequency and claims its small, aged
// uncertainty until the fit has a slope; a cold start claims MaxFreq.
func TestSoftClockRestoreShrinksDispersion(t *testing.T) {
	cold := NewSoftClock(ClockOptions{})
	warm := NewSoftClock(ClockOptions{})
	saved := Drift{Freq: 10e-6, Skew: 0.02e-6, At: t0.Add(-10 * time.Minute)}
	if err := warm.Restore(t0, saved); err != nil {
		t.Fatal(err)
	}
	if st := warm.Status(t0); st.Frequency != saved.Freq {
		t.Fatalf("restored frequency %v, want %v", st.Frequency, saved.Freq)
	}
	// A WAN path's noise: over 30 s the fitted slope is too uncertain to be used.
	cs := driftingEstimates(t, cold, 30*time.Second, 2*time.Second, wanNoise)
	ws := driftingEstimates(t, warm, 30*time.Second, 2*time.Second, wanNoise)
	if ws.Frequency != saved.Freq || ws.Skew > 1e-6 {
		t.Errorf("restored clock: frequency %v skew %v, want %v and the aged skew", ws.Frequency, ws.Skew, saved.Freq)
	}
	if cs.Skew != DefaultMaxFreq {
		t.Errorf("cold clock skew %v, want MaxFreq", cs.Skew)
	}
	if ws.RootDispersion >= cs.RootDispersion {
		t.Errorf("restored root dispersion %v not below the cold start's %v", ws.RootDispersion, cs.RootDispersion)
	}
	// The freqUnknown term: restored ≤ (0.02 + 10/60) ppm × ~15 s ≈ 3 µs; cold ≈ 7.5 ms.
	if ws.RootDispersion-ms(2) > ms(1) {
		t.Errorf("restored root dispersion %v: the frequency term is inflated", ws.RootDispersion)
	}
	if d, ok := warm.Drift(); !ok || d != saved {
		t.Errorf("before its own fit the restored clock saves %+v %v, want the restored drift", d, ok)
	}
	if _, ok := cold.Drift(); ok {
		t.Error("a cold clock without a fitted slope must have nothing to save")
	}
	if err := warm.Restore(t0, saved); err == nil {
		t.Error("Restore after an estimate must be refused")
	}
}

// wanNoise is the estimate noise of a path through the Internet.
const wanNoise = 200 * time.Microsecond

// On a quiet path the slope is fitted from the first seconds' estimates (issue 14): the
// clock does not run on a wrong frequency for a minute.
func TestSoftClockEarlyFitOnQuietPath(t *testing.T) {
	c := NewSoftClock(ClockOptions{})
	st := driftingEstimates(t, c, 10*time.Second, 2*time.Second, 100*time.Nanosecond)
	if math.Abs(st.Frequency-10e-6) > 0.1e-6 || st.Skew > maxEarlySkew {
		t.Fatalf("after 10 s of quiet estimates: frequency %v skew %v, want 10 ppm fitted", st.Frequency, st.Skew)
	}
	if _, ok := c.Drift(); !ok {
		t.Error("a fitted slope must be there to save")
	}
}

func TestSoftClockDriftAfterFit(t *testing.T) {
	c := NewSoftClock(ClockOptions{})
	driftingEstimates(t, c, 90*time.Second, 5*time.Second, 0)
	d, ok := c.Drift()
	if !ok || math.Abs(d.Freq-10e-6) > 0.01e-6 || d.Skew < MinSkew || d.Skew > 0.1e-6 {
		t.Fatalf("fitted drift %+v %v, want 10 ppm with a small skew", d, ok)
	}
	if st := c.Status(t0.Add(91 * time.Second)); st.Skew != d.Skew {
		t.Errorf("status skew %v, drift skew %v", st.Skew, d.Skew)
	}
}

func TestRestoreRefusesStale(t *testing.T) {
	c := NewSoftClock(ClockOptions{})
	if err := c.Restore(t0, Drift{Freq: 1e-6, Skew: 1e-8, At: t0.Add(-MaxDriftAge - time.Hour)}); !errors.Is(err, ErrDriftStale) {
		t.Fatalf("%v, want ErrDriftStale", err)
	}
	if st := driftingEstimates(t, c, 10*time.Second, 2*time.Second, wanNoise); st.Skew != DefaultMaxFreq || st.Frequency != 0 {
		t.Errorf("after a refused restore: %+v, want a cold start", st)
	}
}

// FuzzParseDrift: whatever a drift file holds, parsing never panics, and what parses
// writes back to a file that parses to the same values (parse → encode → parse).
func FuzzParseDrift(f *testing.F) {
	good, _ := Drift{Freq: 1.5e-6, Skew: 0.01e-6, At: t0}.AppendText(nil)
	f.Add(good)
	f.Add([]byte("   -21.048730    0.092612\n"))
	f.Add([]byte(driftHeader + "\n1e300 -0 0\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDrift(data)
		if err != nil {
			return
		}
		b, _ := d.AppendText(nil)
		d2, err := ParseDrift(b)
		if err != nil {
			t.Fatalf("re-encoded %+v does not parse: %v\n%s", d, err, b)
		}
		if !d2.At.Equal(d.At) || !close6(d2.Freq, d.Freq) || !close6(d2.Skew, d.Skew) {
			t.Fatalf("round trip %+v → %+v", d, d2)
		}
	})
}

// close6 compares two values in s/s to the file's precision (1e-6 ppm), relative for
// huge ones.
func close6(a, b float64) bool {
	return math.Abs(a-b) <= 1e-12+1e-15*math.Abs(a)
}
