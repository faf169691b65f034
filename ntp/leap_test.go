package ntp

import (
	"testing"
	"time"

	"timegate/leap"
)

// served reads the reply's receive timestamp and leap indicator for a
// request received at sys.
func served(t *testing.T, st *ServedState, sys time.Time) (time.Time, Leap) {
	t.Helper()
	r := &Responder{State: func() *ServedState { return st }, Now: func() time.Time { return sys }}
	reply, v := r.Respond(make([]byte, 0, 128), clientRequest(4), testClient, sys)
	if v.Action != ActionReply {
		t.Fatalf("verdict %+v", v)
	}
	h, _ := DecodeHeader(reply)
	return h.Receive.Time(sys), h.Leap
}

// An inserted second in step mode: served time runs to 23:59:59.999, then
// 23:59:59 is served again; LI is 1 before, 3 for two seconds, then 0. The
// engine's later shift of the soft clock (Offset −1 s, LeapBase +1 s) serves
// the same time.
func TestServeLeapInsertStep(t *testing.T) {
	midnight := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC).Add(24 * time.Hour)
	off := 3 * time.Millisecond // system clock 3 ms slow
	before := &ServedState{Leap: LeapAdd, Stratum: 2, Offset: off, LeapAt: midnight, LeapSec: 1}
	after := *before
	after.Offset -= time.Second
	after.LeapBase = time.Second
	cases := []struct {
		served string // wanted served time of day, in the repeated-second notation
		li     Leap
		sys    time.Duration // system time from midnight, before off
	}{
		{"23:59:58.5", LeapAdd, -1500 * time.Millisecond},
		{"23:59:59.9", LeapAdd, -100 * time.Millisecond},
		{"23:59:59.0", LeapUnsync, 0},
		{"23:59:59.5", LeapUnsync, 500 * time.Millisecond},
		{"00:00:00.5", LeapUnsync, 1500 * time.Millisecond},
		{"00:00:01.0", LeapNone, 2000 * time.Millisecond},
	}
	for _, c := range cases {
		sys := midnight.Add(c.sys - off)
		for name, st := range map[string]*ServedState{"before shift": before, "after shift": &after} {
			got, li := served(t, st, sys)
			if f := got.Format("15:04:05.0"); f != c.served || li != c.li {
				t.Errorf("%s: sys %v: served %s LI %d, want %s LI %d", name, c.sys, f, li, c.served, c.li)
			}
		}
	}
}

// A deleted second: 23:59:58.9 is followed by 00:00:00.0.
func TestServeLeapDeleteStep(t *testing.T) {
	midnight := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC).Add(24 * time.Hour)
	st := &ServedState{Leap: LeapDelete, Stratum: 2, LeapAt: midnight.Add(-time.Second), LeapSec: -1}
	for _, c := range []struct {
		sys    time.Duration
		served string
		li     Leap
	}{
		{-1100 * time.Millisecond, "23:59:58.9", LeapDelete},
		{-time.Second, "00:00:00.0", LeapUnsync},
		{1500 * time.Millisecond, "00:00:02.5", LeapNone},
	} {
		got, li := served(t, st, midnight.Add(c.sys))
		if f := got.Format("15:04:05.0"); f != c.served || li != c.li {
			t.Errorf("sys %v: served %s LI %d, want %s LI %d", c.sys, f, li, c.served, c.li)
		}
	}
}

// Slew mode: served time never goes back, and runs slow by at most
// leap.SlewRate until the second is in.
func TestServeLeapSlewBounded(t *testing.T) {
	midnight := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC).Add(24 * time.Hour)
	st := &ServedState{Leap: LeapAdd, LeapAt: midnight, LeapSec: 1, LeapRamp: leap.Ramp{Rate: leap.SlewRate}}
	prev, _ := served(t, st, midnight.Add(-time.Second))
	step := 100 * time.Millisecond
	for d := -time.Second + step; d < 20*time.Second; d += step {
		got, _ := served(t, st, midnight.Add(d))
		adv := got.Sub(prev)
		if adv <= 0 || float64(step-adv) > leap.SlewRate*float64(step)*1.0001 {
			t.Fatalf("at %v served advanced %v in %v", d, adv, step)
		}
		prev = got
	}
	got, _ := served(t, st, midnight.Add(20*time.Second))
	if want := midnight.Add(19 * time.Second); !got.Equal(want) {
		t.Errorf("after the slew: %v, want %v", got, want)
	}
}
