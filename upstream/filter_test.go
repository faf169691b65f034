package upstream

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func sample(at time.Duration, offset, delay time.Duration) Sample {
	return Sample{
		Time: t0.Add(at), Offset: offset, Delay: delay, Dispersion: 10 * time.Microsecond,
		Stratum: 2, RootDelay: ms(5), RootDispersion: ms(1),
	}
}

func TestFilterPicksMinimumDelay(t *testing.T) {
	var f Filter
	steps := []struct {
		offset, delay time.Duration
		want          Outcome
		wantOffset    time.Duration
	}{
		{ms(1), ms(30), Accepted, ms(1)},
		{ms(2), ms(20), Accepted, ms(2)}, // lower delay: used
		{ms(3), ms(10), Accepted, ms(3)},
		{ms(4), ms(40), Stale, ms(3)}, // higher delay: the 10 ms sample stays, not reused
		{ms(5), ms(15), Stale, ms(3)},
	}
	for i, s := range steps {
		got := f.Add(sample(time.Duration(i)*time.Second, s.offset, s.delay), 0)
		st, ok := f.Stats()
		if got != s.want || !ok || st.Offset != s.wantOffset {
			t.Fatalf("step %d: outcome %v offset %v, want %v %v", i, got, st.Offset, s.want, s.wantOffset)
		}
		if st.Samples != i+1 {
			t.Fatalf("step %d: %d samples", i, st.Samples)
		}
	}
	// Six more samples push the 10 ms one out; the best remaining (15 ms, newer than the
	// one used) takes over.
	for i := range 6 {
		f.Add(sample(time.Duration(10+i)*time.Second, ms(9), ms(50)), 0)
	}
	if st, _ := f.Stats(); st.Offset != ms(5) || st.Delay != ms(15) {
		t.Fatalf("after the minimum left: offset %v delay %v, want 5ms 15ms", st.Offset, st.Delay)
	}
}

func TestFilterNeverUsesOlderSample(t *testing.T) {
	var f Filter
	f.Add(sample(100*time.Second, ms(1), ms(20)), 0)
	// A response that arrives with an earlier local time (a late duplicate, or the clock
	// stepped back) has the lowest delay but must not replace a newer sample.
	if got := f.Add(sample(90*time.Second, ms(7), ms(5)), 0); got != Stale {
		t.Fatalf("older sample: %v, want stale", got)
	}
	if st, _ := f.Stats(); st.Offset != ms(1) || !st.Epoch.Equal(t0.Add(100*time.Second)) {
		t.Fatalf("older sample was used: %+v", st)
	}
}

func TestFilterDispersionGrowth(t *testing.T) {
	var f Filter
	a := sample(0, ms(1), ms(10))
	a.Dispersion = ms(1)
	b := sample(100*time.Second, ms(2), ms(20))
	b.Dispersion = ms(2)
	f.Add(a, 0)
	f.Add(b, 0)
	st, _ := f.Stats()
	// Sorted by delay: a (aged by PHI·100 s), b, then six dummies at MAXDISP.
	want := (1e-3+PHI*100)/2 + 2e-3/4
	for i := 2; i < NStage; i++ {
		want += MaxDisp.Seconds() / math.Pow(2, float64(i+1))
	}
	if got := st.Dispersion.Seconds(); math.Abs(got-want) > 1e-9 {
		t.Fatalf("dispersion %.9f, want %.9f", got, want)
	}
	// Root distance keeps growing by PHI per second after the last update.
	c, _ := f.Candidate()
	d0 := c.RootDistance(t0.Add(100 * time.Second))
	d1 := c.RootDistance(t0.Add(1100 * time.Second))
	if got := (d1 - d0).Seconds(); math.Abs(got-PHI*1000) > 1e-9 {
		t.Fatalf("root distance grew %.9f in 1000 s, want %.9f", got, PHI*1000)
	}
}

func TestFilterJitter(t *testing.T) {
	f := Filter{Precision: time.Nanosecond}
	// Added worst first so that each new sample becomes the minimum and is used.
	offsets := []float64{3, -2, 1, 0}
	for i, o := range offsets {
		if got := f.Add(sample(time.Duration(i)*time.Second, ms(o), ms(float64(4-i))), 0); got != Accepted {
			t.Fatalf("sample %d: %v", i, got)
		}
	}
	st, _ := f.Stats()
	want := math.Sqrt((1+4+9)/3.0) * 1e-3
	if got := st.Jitter.Seconds(); math.Abs(got-want) > 1e-9 {
		t.Fatalf("jitter %.9f, want %.9f", got, want)
	}

	// A single sample has no spread: jitter is the precision.
	g := Filter{Precision: 3 * time.Microsecond}
	g.Add(sample(0, ms(5), ms(1)), 0)
	if st, _ := g.Stats(); st.Jitter != 3*time.Microsecond {
		t.Fatalf("single-sample jitter %v", st.Jitter)
	}

	// Beyond the first two, samples with delays over 1.5 s do not count towards jitter.
	var h Filter
	h.Add(sample(0, ms(100), 2*time.Second), 0)
	h.Add(sample(time.Second, ms(-100), 3*time.Second), 0)
	h.Add(sample(2*time.Second, 0, ms(1)), 0)
	h.Add(sample(3*time.Second, ms(1), ms(2)), 0)
	if st, _ := h.Stats(); st.Jitter != ms(1) {
		t.Fatalf("jitter %v, want 1ms from the two short-delay samples", st.Jitter)
	}
}

// steady fills f with eight quiet samples one poll apart, each a little faster than the
// last so that each is used; the last is at 7·poll.
func steady(f *Filter, poll time.Duration) {
	for i := range NStage {
		jitter := time.Duration((i%3)-1) * 10 * time.Microsecond
		f.Add(sample(time.Duration(i)*poll, jitter, ms(10)-time.Duration(i)*time.Microsecond), poll)
	}
}

func TestFilterPopcornSpike(t *testing.T) {
	const poll = 16 * time.Second
	var f Filter
	steady(&f, poll)
	before, _ := f.Stats()
	// A sample with the lowest delay yet but 50 ms off, one poll later: a spike.
	if got := f.Add(sample(8*poll, ms(50), ms(5)), poll); got != Spike {
		t.Fatalf("spike: %v", got)
	}
	if st, _ := f.Stats(); st.Offset != before.Offset || st.Epoch != before.Epoch {
		t.Fatalf("spike was used: %+v", st)
	}
	// The shift persists: two polls after the last used sample it is believed.
	if got := f.Add(sample(9*poll, ms(50), ms(6)), poll); got != Accepted {
		t.Fatalf("persisting shift: %v", got)
	}
	if st, _ := f.Stats(); st.Offset != ms(50) {
		t.Fatalf("offset %v after the shift persisted", st.Offset)
	}

	// Without a poll interval the test is off.
	var g Filter
	steady(&g, 0)
	if got := g.Add(sample(8*poll, ms(50), ms(5)), 0); got != Accepted {
		t.Fatalf("poll 0: %v", got)
	}
}

func TestFilterTimeoutEmpties(t *testing.T) {
	var f Filter
	steady(&f, time.Second)
	for i := range NStage {
		if _, ok := f.Candidate(); !ok {
			t.Fatalf("candidate gone after %d timeouts", i)
		}
		f.Timeout(t0.Add(time.Duration(10+i) * time.Second))
	}
	if _, ok := f.Candidate(); ok {
		t.Fatal("candidate after eight timeouts")
	}
	st, _ := f.Stats()
	if want := MaxDisp.Seconds() * (1 - 1.0/256); math.Abs(st.Dispersion.Seconds()-want) > 1e-9 || st.Samples != 0 {
		t.Fatalf("empty register: %+v", st)
	}
	if got := f.Timeout(t0.Add(time.Minute)); got != Empty {
		t.Fatalf("timeout on empty filter: %v", got)
	}
	f.Precision = time.Microsecond
	f.Reset()
	if _, ok := f.Stats(); ok || f.Precision != time.Microsecond {
		t.Fatal("reset kept stats or lost precision")
	}
}

func TestFilterCandidateCarriesHeader(t *testing.T) {
	var f Filter
	if _, ok := f.Candidate(); ok {
		t.Fatal("empty filter offered a candidate")
	}
	s := sample(0, ms(1), ms(2))
	s.Leap = LeapInsert
	f.Add(s, 0)
	c, ok := f.Candidate()
	if !ok || c.Stratum != 2 || c.RootDelay != ms(5) || c.RootDispersion != ms(1) || c.Leap != LeapInsert {
		t.Fatalf("candidate %+v", c)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Accepted: "accepted", Stale: "stale", Spike: "spike", Empty: "empty", 9: "unknown"} {
		if o.String() != want {
			t.Errorf("%d: %q", o, o.String())
		}
	}
}
