package upstream

import (
	"errors"
	"math"
	"testing"
	"time"
)

func estimate(at time.Time, offset time.Duration) Estimate {
	return Estimate{
		Time: at, Newest: at, Offset: offset,
		Stratum: 1, RefID: 0xc0000201, Leap: LeapNone,
		RootDelay: ms(10), RootDispersion: ms(2), Survivors: 3,
	}
}

// correction is served minus system time at sys, in seconds.
func correction(c *SoftClock, sys time.Time) float64 { return c.Now(sys).Sub(sys).Seconds() }

func TestSoftClockStepsOnlyAtStartup(t *testing.T) {
	c := NewSoftClock(ClockOptions{})
	st := c.Status(t0)
	if st.Synchronised || st.Leap != LeapUnsynch || st.Stratum != MaxStratum || st.RefID != RefIDInit ||
		st.RootDispersion != MaxDisp || st.Reason.String() != "not yet synchronised" {
		t.Fatalf("initial status %+v", st)
	}
	if !c.Now(t0).Equal(t0) {
		t.Fatal("an unsynchronised clock must serve system time")
	}
	if err := c.Update(t0, estimate(t0, ms(500))); err != nil {
		t.Fatal(err)
	}
	if got := c.Now(t0); !got.Equal(t0.Add(ms(500))) {
		t.Fatalf("after the start-up step: %v", got.Sub(t0))
	}
	st = c.Status(t0)
	if !st.Synchronised || st.Stratum != 2 || st.RefID != 0xc0000201 || st.Leap != LeapNone ||
		st.RootDelay != ms(10) || !st.RefTime.Equal(t0.Add(ms(500))) {
		t.Fatalf("synchronised status %+v", st)
	}
	// A later estimate 300 ms away is slewed, not stepped: no jump at the update, then
	// exactly MaxSlew per second.
	t1 := t0.Add(16 * time.Second)
	before := correction(c, t1)
	if err := c.Update(t1, estimate(t1, ms(800))); err != nil {
		t.Fatal(err)
	}
	if after := correction(c, t1); math.Abs(after-before) > 1e-9 {
		t.Fatalf("served time jumped %v at a runtime update", after-before)
	}
	rate := correction(c, t1.Add(time.Second)) - correction(c, t1)
	if math.Abs(rate-DefaultMaxSlew) > 1e-9 {
		t.Fatalf("slew rate %.9f, want %.9f", rate, DefaultMaxSlew)
	}
}

func TestSoftClockSlewsBelowStepThreshold(t *testing.T) {
	c := NewSoftClock(ClockOptions{})
	if err := c.Update(t0, estimate(t0, ms(50))); err != nil {
		t.Fatal(err)
	}
	if got := correction(c, t0); got != 0 {
		t.Fatalf("50 ms stepped: correction %v", got)
	}
	// The pending correction counts as error until it is slewed in.
	if st := c.Status(t0); st.RootDispersion < ms(52) {
		t.Fatalf("root dispersion %v does not include the pending 50 ms", st.RootDispersion)
	}
	done := t0.Add(100 * time.Second) // 50 ms at 500 ppm
	if got := correction(c, done); math.Abs(got-0.050) > 1e-9 {
		t.Fatalf("after 100 s: correction %.9f", got)
	}
	if got := correction(c, done.Add(time.Hour)); math.Abs(got-0.050) > 1e-9 {
		t.Fatalf("slew overshot: %.9f", got)
	}
}

func TestSoftClockRefusals(t *testing.T) {
	build := t0.Add(-24 * time.Hour)
	c := NewSoftClock(ClockOptions{BuildDate: build})
	err := c.Update(t0, estimate(t0, 2000*time.Second))
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("2000 s: %v", err)
	}
	if st := c.Status(t0); st.Synchronised || st.Reason.Kind != ReasonPanic || !c.Now(t0).Equal(t0) {
		t.Fatalf("after a panic refusal: %+v", st)
	}
	if err := c.Update(t0, estimate(t0, -48*time.Hour)); !errors.Is(err, ErrPanic) {
		t.Fatalf("two days back: %v", err)
	}
	c = NewSoftClock(ClockOptions{BuildDate: build, PanicThreshold: 100 * time.Hour})
	if err := c.Update(t0, estimate(t0, -48*time.Hour)); !errors.Is(err, ErrBeforeBuild) {
		t.Fatalf("before the build date: %v", err)
	}
	if st := c.Status(t0); st.Synchronised || st.Reason.String() != "time before build date refused" {
		t.Fatalf("status %+v", st)
	}
	// Once synchronised, a wild estimate is refused and the clock holds over.
	if err := c.Update(t0, estimate(t0, ms(1))); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(time.Minute)
	if err := c.Update(t1, estimate(t1, 200*time.Hour)); !errors.Is(err, ErrPanic) {
		t.Fatalf("runtime panic: %v", err)
	}
	if st := c.Status(t1); !st.Synchronised || !st.Holdover || st.Reason.Kind != ReasonPanic {
		t.Fatalf("after a runtime refusal: %+v", st)
	}
}

// feedLine feeds the clock estimates of an offset growing at freq from base, every poll
// from start for n polls, each lagging by lag as filter output does. It returns the time
// of the last update.
func feedLine(t *testing.T, c *SoftClock, start time.Time, base time.Duration, freq float64, poll time.Duration, n int) time.Time {
	t.Helper()
	truth := func(at time.Time) time.Duration { return base + dur(freq*at.Sub(start).Seconds()) }
	const lag = 5 * time.Second
	now := start
	for i := range n {
		now = start.Add(time.Duration(i)*poll + lag)
		at := now.Add(-lag)
		if err := c.Update(now, estimate(at, truth(at))); err != nil {
			t.Fatal(err)
		}
	}
	return now
}

func TestSoftClockLearnsFrequency(t *testing.T) {
	const freq = 40e-6
	c := NewSoftClock(ClockOptions{})
	last := feedLine(t, c, t0, ms(200), freq, 16*time.Second, 60)
	st := c.Status(last)
	if math.Abs(st.Frequency-freq) > 1e-9 {
		t.Fatalf("frequency %.3f ppm, want 40", st.Frequency*1e6)
	}
	truth := func(sys time.Time) float64 { return 0.2 + freq*sys.Sub(t0).Seconds() }
	for _, at := range []time.Duration{0, 7 * time.Second, 10 * time.Minute} {
		sys := last.Add(at)
		if e := correction(c, sys) - truth(sys); math.Abs(e) > 1e-6 {
			t.Fatalf("%v after the last update: error %.9f s", at, e)
		}
	}
}

func TestSoftClockHoldover(t *testing.T) {
	c := NewSoftClock(ClockOptions{HoldoverLimit: time.Hour})
	last := feedLine(t, c, t0, ms(-30), -12e-6, 16*time.Second, 40)
	c.Lose(Reason{Kind: ReasonTooFew, Agree: 2, Of: 3})
	d1 := c.Status(last.Add(10 * time.Minute))
	d2 := c.Status(last.Add(40 * time.Minute))
	if !d1.Synchronised || !d1.Holdover || d1.Reason.String() != "only 2 of minsources 3 agree" {
		t.Fatalf("in holdover: %+v", d1)
	}
	// It grows by PHI plus the fitted frequency's skew (the noiseless line
	// fits to MinSkew).
	if grow, want := (d2.RootDispersion - d1.RootDispersion).Seconds(), (PHI+d1.Skew)*1800; math.Abs(grow-want) > 1e-8 || d1.Skew <= 0 {
		t.Fatalf("root dispersion grew %.9f in 30 min, want %.9f (skew %g)", grow, want, d1.Skew)
	}
	if d2.Age != 40*time.Minute {
		t.Fatalf("age %v", d2.Age)
	}
	over := c.Status(last.Add(time.Hour + time.Second))
	if over.Synchronised || over.Leap != LeapUnsynch || over.Stratum != MaxStratum ||
		over.Reason.String() != "holdover limit exceeded (only 2 of minsources 3 agree)" {
		t.Fatalf("past the limit: %+v", over)
	}
	// A fresh estimate ends the holdover.
	back := last.Add(2 * time.Hour)
	if err := c.Update(back, estimate(back, ms(-30)+dur(-12e-6*back.Sub(t0).Seconds()))); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(back); !st.Synchronised || st.Holdover || st.Reason.Kind != ReasonNone {
		t.Fatalf("after recovery: %+v", st)
	}
}

// Campaign finding: `holdover 0` (documented range 0..) silently meant
// 3600 s. A negative limit, which `holdover 0` maps to, is no holdover:
// unsynchronised as soon as the sources are lost, and no age limit while
// they are not (a poll interval is not a loss).
func TestSoftClockNoHoldover(t *testing.T) {
	c := NewSoftClock(ClockOptions{HoldoverLimit: -1})
	last := feedLine(t, c, t0, ms(-30), -12e-6, 16*time.Second, 40)
	if st := c.Status(last.Add(2 * time.Hour)); !st.Synchronised {
		t.Fatalf("synchronised sources, last estimate 2 h old: %+v", st)
	}
	c.Lose(Reason{Kind: ReasonTooFew, Agree: 2, Of: 3})
	if st := c.Status(last.Add(time.Millisecond)); st.Synchronised || st.Stratum != MaxStratum || st.Reason.Kind != ReasonHoldover {
		t.Fatalf("sources lost without holdover: %+v", st)
	}
}

func TestSoftClockIgnoresRepeatedEstimates(t *testing.T) {
	c := NewSoftClock(ClockOptions{})
	last := feedLine(t, c, t0, ms(5), 10e-6, 16*time.Second, 10)
	snap := c.Snapshot()
	later := last.Add(3 * time.Minute)
	repeat := estimate(last.Add(-5*time.Second), ms(300)) // old samples, wildly different combination
	if err := c.Update(later, repeat); err != nil {
		t.Fatal(err)
	}
	if c.Status(later) != snap.Status(later) || !c.Now(later).Equal(snap.Now(later)) {
		t.Fatal("an estimate from samples already used changed the clock")
	}
}

func TestSnapshotIsImmutable(t *testing.T) {
	c := NewSoftClock(ClockOptions{})
	if err := c.Update(t0, estimate(t0, time.Second)); err != nil {
		t.Fatal(err)
	}
	snap := c.Snapshot()
	before := snap.Now(t0.Add(time.Minute))
	t1 := t0.Add(16 * time.Second)
	if err := c.Update(t1, estimate(t1, 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !snap.Now(t0.Add(time.Minute)).Equal(before) {
		t.Fatal("snapshot changed after an update")
	}
}

// Campaign finding: a lone keyed upstream 200 s off was followed at
// start-up. With StartLimit set, the first synchronisation refuses a step
// beyond it from fewer than two combined sources, and takes it from two;
// once synchronised the limit no longer applies (the panic threshold does).
func TestSoftClockStartLimit(t *testing.T) {
	c := NewSoftClock(ClockOptions{StartLimit: time.Second})
	lone := estimate(t0, 200*time.Second)
	lone.Survivors = 1
	if err := c.Update(t0, lone); !errors.Is(err, ErrLoneStep) {
		t.Fatalf("lone source 200 s off: err = %v, want ErrLoneStep", err)
	}
	if st := c.Status(t0); st.Synchronised || st.Reason.Kind != ReasonLoneStep || st.Reason.Kind.RefID() != refIDLone {
		t.Fatalf("after the refusal: %+v", st)
	}
	near := estimate(t0.Add(time.Second), 500*time.Millisecond)
	near.Survivors = 1
	if err := c.Update(t0.Add(time.Second), near); err != nil {
		t.Fatalf("lone source 0.5 s off: %v", err)
	}
	two := NewSoftClock(ClockOptions{StartLimit: time.Second})
	agreed := estimate(t0, 200*time.Second)
	agreed.Survivors = 2
	if err := two.Update(t0, agreed); err != nil || !two.Status(t0).Synchronised {
		t.Fatalf("two sources 200 s off: %v", err)
	}
	off := NewSoftClock(ClockOptions{})
	if err := off.Update(t0, lone); err != nil {
		t.Fatalf("no limit configured: %v", err)
	}
}

// makestep 1 3: the first three fresh estimates may step, by more than 1 s only; later
// ones are slewed whatever their size.
func TestSoftClockStepLimit(t *testing.T) {
	c := NewSoftClock(ClockOptions{StepThreshold: time.Second, StepLimit: 3})
	steps := []struct {
		off  time.Duration
		step bool
	}{{ms(500), false}, {2 * time.Second, true}, {ms(2500), false}, {5 * time.Second, false}}
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * 2 * time.Second)
		before := correction(c, at)
		if err := c.Update(at, estimate(at, s.off)); err != nil {
			t.Fatal(err)
		}
		jumped := math.Abs(correction(c, at)-before) > 1e-9
		if jumped != s.step {
			t.Errorf("estimate %d (%v): stepped %v, want %v", i+1, s.off, jumped, s.step)
		}
	}
}
