package engine

import (
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/leap"
	"timegate/ntp"
	"timegate/upstream"
)

// leapTable lists the real leaps to 2017 and one more at midnight.
func leapTable(midnight time.Time, sec int) *leap.Table {
	tb := &leap.Table{Expires: midnight.Add(180 * 24 * time.Hour)}
	tai := leap.BaseTAI
	tb.Entries = append(tb.Entries, leap.Entry{At: time.Date(1972, 1, 1, 0, 0, 0, 0, time.UTC), TAI: tai})
	tb.Entries = append(tb.Entries, leap.Entry{At: midnight, TAI: tai + sec})
	return tb
}

// leapRun drives a runner through a leap with an injected clock: the system
// clock is 2 ms slow and never leaps (as under timegate, which never touches
// it), and the upstream serves true UTC, so after the leap its offsets are a
// second lower. Every 16 s an estimate arrives; the runner republishes when
// its law says so. check is called at every 50 ms with the state in force.
func leapRun(t *testing.T, opts LeapOptions, midnight time.Time, sec int, from, to time.Duration,
	check func(sys time.Time, pub, smooth *ntp.ServedState)) *runner {
	t.Helper()
	const slow = 2 * time.Millisecond
	c := upstream.NewSoftClock(upstream.ClockOptions{})
	r := &runner{Engine: &Engine{clock: c, log: zaptest.NewLogger(t), opts: Options{Precision: -20, Leap: opts}}}
	truth := func(sys time.Time) time.Duration { // true UTC minus system time
		at := midnight
		if sec < 0 {
			at = at.Add(-time.Second)
		}
		if !sys.Add(slow).Before(at) {
			return slow - time.Duration(sec)*time.Second
		}
		return slow
	}
	start := midnight.Add(from - 10*time.Minute)
	for at := start; at.Before(midnight.Add(from)); at = at.Add(16 * time.Second) {
		if err := c.Update(at, upstream.Estimate{Time: at, Newest: at, Offset: truth(at), Stratum: 1, RootDispersion: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	var pub, smooth *ntp.ServedState
	var until time.Time
	nextEst := midnight.Add(from)
	for sys := midnight.Add(from); sys.Before(midnight.Add(to)); sys = sys.Add(50 * time.Millisecond) {
		fresh := false
		if !sys.Before(nextEst) {
			nextEst = nextEst.Add(16 * time.Second)
			if !r.leapClose(sys) {
				est := upstream.Estimate{Time: sys, Newest: sys, Offset: truth(sys), Stratum: 1, RootDispersion: time.Millisecond}
				if err := c.Update(sys, est); err != nil {
					t.Fatal(err)
				}
				fresh = true
			}
		}
		if pub == nil || fresh || !sys.Before(until) {
			_, pub, smooth, until = r.states(sys)
		}
		check(sys, pub, smooth)
	}
	return r
}

func TestLeapInsertStepAcrossMidnight(t *testing.T) {
	midnight := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tb := leapTable(midnight, 1)
	var prev time.Time
	jumps := 0
	seen := map[ntp.Leap]bool{}
	r := leapRun(t, LeapOptions{Table: func() *leap.Table { return tb }}, midnight, 1, -30*time.Second, 10*time.Minute,
		func(sys time.Time, pub, _ *ntp.ServedState) {
			got := pub.Serve(sys)
			li := pub.Indicator(sys)
			seen[li] = true
			u := sys.Add(2 * time.Millisecond) // true time without the leap
			switch {
			case u.Before(midnight):
				if li != ntp.LeapAdd {
					t.Fatalf("%v before the leap: LI %d", u, li)
				}
				if d := got.Sub(u).Abs(); d > 10*time.Microsecond {
					t.Fatalf("%v: served %v off", u, d)
				}
			default:
				if d := got.Sub(u.Add(-time.Second)).Abs(); d > 10*time.Microsecond {
					t.Fatalf("%v after the leap: served %v, want %v", u, got, u.Add(-time.Second))
				}
				if u.Sub(midnight) >= leap.InProgress && li != ntp.LeapNone {
					t.Fatalf("%v after the leap: LI %d", u, li)
				}
			}
			if !prev.IsZero() && got.Before(prev) {
				jumps++
			}
			prev = got
		})
	if jumps != 1 || !seen[ntp.LeapUnsync] {
		t.Errorf("served time went back %d times (want 1, at midnight); LI values %v", jumps, seen)
	}
	if r.leap.due.Sec != 0 {
		t.Error("the leap plan never ended")
	}
}

func TestLeapDeleteStep(t *testing.T) {
	midnight := time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)
	tb := leapTable(midnight, -1)
	leapRun(t, LeapOptions{Table: func() *leap.Table { return tb }}, midnight, -1, -20*time.Second, 2*time.Minute,
		func(sys time.Time, pub, _ *ntp.ServedState) {
			got, u := pub.Serve(sys), sys.Add(2*time.Millisecond)
			want := u
			if !u.Before(midnight.Add(-time.Second)) {
				want = u.Add(time.Second)
			}
			if d := got.Sub(want).Abs(); d > 10*time.Microsecond {
				t.Fatalf("%v: served %v, want %v", u, got.Format("15:04:05.000"), want.Format("15:04:05.000"))
			}
			if li := pub.Indicator(sys); u.Before(midnight.Add(-time.Second)) && li != ntp.LeapDelete {
				t.Fatalf("%v: LI %d", u, li)
			}
		})
}

// Slew mode: served time never goes back and never runs slower than
// 1 − leap.SlewRate; twelve seconds after midnight it is UTC again.
func TestLeapInsertSlew(t *testing.T) {
	midnight := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tb := leapTable(midnight, 1)
	var prev time.Time
	leapRun(t, LeapOptions{Table: func() *leap.Table { return tb }, Mode: leap.ModeSlew}, midnight, 1, -10*time.Second, 3*time.Minute,
		func(sys time.Time, pub, _ *ntp.ServedState) {
			got, u := pub.Serve(sys), sys.Add(2*time.Millisecond)
			if !prev.IsZero() {
				adv := got.Sub(prev)
				if minAdv := 50 * time.Millisecond * 11 / 12; adv < minAdv-time.Microsecond {
					t.Fatalf("%v: served advanced only %v in 50 ms", u, adv)
				}
			}
			prev = got
			if u.After(midnight.Add(13*time.Second)) && got.Sub(u.Add(-time.Second)).Abs() > 10*time.Microsecond {
				t.Fatalf("%v after the slew: served %v", u, got)
			}
		})
}

// The smoothed state never steps, never announces the leap, serves the
// smoothing reference ID, and runs within max-freq of true time.
func TestLeapSmoothedState(t *testing.T) {
	midnight := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tb := leapTable(midnight, 1)
	sm := leap.NewSmooth(400e-6, 0.001e-6)
	var prevS, prevT time.Time
	leapRun(t, LeapOptions{Table: func() *leap.Table { return tb }, Smooth: sm}, midnight, 1, -10*time.Second, 2*time.Minute,
		func(sys time.Time, pub, smooth *ntp.ServedState) {
			s, tr := smooth.Serve(sys), pub.Serve(sys)
			if li := smooth.Indicator(sys); li != ntp.LeapNone {
				t.Fatalf("smoothed LI %d", li)
			}
			if !prevS.IsZero() {
				if adv := s.Sub(prevS); adv < 50*time.Millisecond-time.Duration(400e-6*float64(50*time.Millisecond))-time.Microsecond {
					t.Fatalf("smoothed time advanced %v in 50 ms", adv)
				}
			}
			u := sys.Add(2 * time.Millisecond)
			if !u.Before(midnight.Add(time.Second)) {
				if smooth.RefID != refIDSmooth {
					t.Fatalf("refid %#x during smoothing", smooth.RefID)
				}
				// True time took the whole second; smoothed time almost none yet.
				if d := s.Sub(tr); d < 900*time.Millisecond || d > time.Second {
					t.Fatalf("smoothed − true %v two minutes in", d)
				}
			}
			prevS, prevT = s, tr
		})
	_ = prevT
}

// A hostile majority voting a leap on 31 December is outvoted by a table
// that lists none; without a table it would be followed.
func TestLeapVoteOverruledByTable(t *testing.T) {
	day := time.Date(2027, 12, 31, 12, 0, 0, 0, time.UTC)
	tb := leapTable(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	tb.Expires = day.Add(30 * 24 * time.Hour)
	for _, withTable := range []bool{true, false} {
		c := upstream.NewSoftClock(upstream.ClockOptions{})
		if err := c.Update(day, upstream.Estimate{Time: day, Newest: day, Stratum: 1, Leap: upstream.LeapInsert}); err != nil {
			t.Fatal(err)
		}
		opts := LeapOptions{}
		if withTable {
			opts.Table = func() *leap.Table { return tb }
		}
		r := &runner{Engine: &Engine{clock: c, log: zaptest.NewLogger(t), opts: Options{Leap: opts}}}
		_, pub, _, _ := r.states(day)
		want := ntp.LeapAdd
		if withTable {
			want = ntp.LeapNone
		}
		if pub.Leap != want {
			t.Errorf("table %v: LI %d, want %d", withTable, pub.Leap, want)
		}
	}
}

// A leap only the vote announced is withdrawn with the vote, until
// leap.Close before it; one the table lists stays.
func TestLeapVoteWithdrawn(t *testing.T) {
	day := time.Date(2027, 6, 30, 12, 0, 0, 0, time.UTC)
	c := upstream.NewSoftClock(upstream.ClockOptions{})
	est := upstream.Estimate{Time: day, Newest: day, Stratum: 1, Leap: upstream.LeapInsert}
	if err := c.Update(day, est); err != nil {
		t.Fatal(err)
	}
	r := &runner{Engine: &Engine{clock: c, log: zaptest.NewLogger(t)}}
	if _, pub, _, _ := r.states(day); pub.Leap != ntp.LeapAdd {
		t.Fatalf("vote on 30 June: LI %d", pub.Leap)
	}
	later := day.Add(time.Hour)
	est.Time, est.Newest, est.Leap = later, later, upstream.LeapNone
	if err := c.Update(later, est); err != nil {
		t.Fatal(err)
	}
	if _, pub, _, _ := r.states(later); pub.Leap != ntp.LeapNone || !pub.LeapAt.IsZero() {
		t.Fatalf("vote withdrawn: LI %d, leap at %v", pub.Leap, pub.LeapAt)
	}
}
