package leap

import (
	"bytes"
	"errors"
	"math"
	"os"
	"testing"
	"time"
)

func date(y int, m time.Month, d, hh, mm, ss int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, 0, time.UTC)
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The tzdata copy of the IERS file: 28 entries, expiring 28 June 2026.
func TestParseListTzdata(t *testing.T) {
	tb, err := ParseList(readFile(t, "leap-seconds.list"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Entries) != 28 {
		t.Fatalf("%d entries, want 28", len(tb.Entries))
	}
	if got := tb.Expires; !got.Equal(date(2026, 6, 28, 0, 0, 0)) {
		t.Errorf("expires %v", got)
	}
	if !tb.Expired(date(2026, 12, 4, 0, 0, 0)) || tb.Expired(date(2026, 6, 27, 23, 0, 0)) {
		t.Error("expiry check wrong")
	}
	if got := tb.TAI(date(2017, 1, 1, 0, 0, 0)); got != 37 {
		t.Errorf("TAI at 2017 = %d, want 37", got)
	}
	if got := tb.TAI(date(2016, 12, 31, 23, 59, 59)); got != 36 {
		t.Errorf("TAI before 2017 = %d, want 36", got)
	}
	if got := tb.Due(date(2016, 12, 31, 0, 0, 1)); got != 1 {
		t.Errorf("Due(2016-12-31) = %d, want +1", got)
	}
	for _, d := range []time.Time{date(2016, 12, 30, 12, 0, 0), date(2017, 1, 1, 0, 0, 0), date(2016, 6, 30, 12, 0, 0)} {
		if got := tb.Due(d); got != 0 {
			t.Errorf("Due(%v) = %d, want 0", d, got)
		}
	}
}

func TestParseListTampered(t *testing.T) {
	good := readFile(t, "leap-seconds.list")
	cases := map[string]struct {
		edit func([]byte) []byte
		want error
	}{
		"changed offset": {func(b []byte) []byte {
			return bytes.Replace(b, []byte("3692217600      37"), []byte("3692217600      38"), 1)
		}, ErrHash},
		"later expiry": {func(b []byte) []byte {
			return bytes.Replace(b, []byte("#@\t3991593600"), []byte("#@\t3991593601"), 1)
		}, ErrHash},
		"removed entry": {func(b []byte) []byte {
			return bytes.Replace(b, []byte("3692217600      37      # 1 Jan 2017\n"), nil, 1)
		}, ErrHash},
		"no hash": {func(b []byte) []byte {
			i := bytes.Index(b, []byte("#h"))
			return b[:i]
		}, ErrNoHash},
		"bad hash word": {func(b []byte) []byte {
			return bytes.Replace(b, []byte("49db2447"), []byte("49db244g"), 1)
		}, ErrSyntax},
		"huge": {func(b []byte) []byte { return append(b, make([]byte, MaxFileSize)...) }, ErrTooLarge},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			in := c.edit(bytes.Clone(good))
			if bytes.Equal(in, good) {
				t.Fatal("edit did not apply")
			}
			if _, err := ParseList(in); !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
	// Comments and whitespace are not hashed: editing them is harmless.
	in := bytes.Replace(good, []byte("# 1 Jan 2017"), []byte("# first of January"), 1)
	in = bytes.ReplaceAll(in, []byte("\n"), []byte("\r\n"))
	if _, err := ParseList(in); err != nil {
		t.Errorf("comment edit: %v", err)
	}
}

func TestFormatListRoundTrip(t *testing.T) {
	tb, err := ParseList(readFile(t, "leap-seconds.list"))
	if err != nil {
		t.Fatal(err)
	}
	tb.Entries = append(tb.Entries, Entry{At: date(2027, 1, 1, 0, 0, 0), TAI: 36}) // a deletion
	tb.Expires = date(2027, 6, 28, 0, 0, 0)
	back, err := ParseList(FormatList(tb))
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Entries) != 29 || back.Due(date(2026, 12, 31, 5, 0, 0)) != -1 || !back.Expires.Equal(tb.Expires) {
		t.Errorf("round trip: %+v", back)
	}
}

// right/UTC from tzdata 2025b agrees with leap-seconds.list and has the
// check chrony runs on a leapsectz zone: 2012-06-30 inserts with TAI 34.
func TestParseTZif(t *testing.T) {
	tb, err := ParseTZif(readFile(t, "right-UTC.tzif"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := ParseList(readFile(t, "leap-seconds.list"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Entries) != len(list.Entries) {
		t.Fatalf("%d entries, list has %d", len(tb.Entries), len(list.Entries))
	}
	for i := range tb.Entries {
		if tb.Entries[i] != list.Entries[i] {
			t.Errorf("entry %d: tzif %v, list %v", i, tb.Entries[i], list.Entries[i])
		}
	}
	day := time.Unix(1341014400, 0)
	if tb.Due(day) != 1 || tb.TAI(day) != 34 || tb.Due(time.Unix(1356912000, 0)) != 0 || tb.TAI(time.Unix(1356912000, 0)) != 35 {
		t.Error("chrony's leapsectz check fails")
	}
	if _, err := ParseTZif([]byte("TZif2")); !errors.Is(err, ErrSyntax) {
		t.Errorf("short: %v", err)
	}
	etc, err := os.ReadFile("/usr/share/zoneinfo/Etc/UTC") // no leap records
	if err == nil {
		if _, err := ParseTZif(etc); !errors.Is(err, ErrSyntax) {
			t.Errorf("Etc/UTC: %v", err)
		}
	}
}

func TestDecide(t *testing.T) {
	list, err := ParseList(readFile(t, "leap-seconds.list"))
	if err != nil {
		t.Fatal(err)
	}
	fresh := *list
	fresh.Entries = append(fresh.Entries, Entry{At: date(2026, 7, 1, 0, 0, 0), TAI: 38}, Entry{At: date(2027, 4, 1, 0, 0, 0), TAI: 37})
	fresh.Expires = date(2027, 12, 28, 0, 0, 0)
	noExpiry := fresh
	noExpiry.Expires = time.Time{}
	cases := []struct {
		name string
		now  time.Time
		tb   *Table
		vote int
		sec  int
		at   time.Time
		over bool
	}{
		{"table insert on the day", date(2026, 6, 30, 0, 0, 0), &fresh, 0, 1, date(2026, 7, 1, 0, 0, 0), false},
		{"table: not the day before", date(2026, 6, 29, 23, 59, 59), &fresh, 0, 0, time.Time{}, false},
		{"table: not after", date(2026, 7, 1, 0, 0, 0), &fresh, 0, 0, time.Time{}, false},
		{"table delete at 23:59:59, any month end", date(2027, 3, 31, 12, 0, 0), &fresh, 0, -1, date(2027, 3, 31, 23, 59, 59), false},
		{"table overrules a hostile vote", date(2025, 12, 31, 1, 0, 0), &fresh, 1, 0, time.Time{}, true},
		{"table overrules an opposite vote", date(2026, 6, 30, 1, 0, 0), &fresh, -1, 1, date(2026, 7, 1, 0, 0, 0), true},
		{"expired table: the vote on 31 Dec", date(2027, 12, 31, 1, 0, 0), &fresh, 1, 1, date(2028, 1, 1, 0, 0, 0), false},
		{"expired table: a vote on another day is not a leap", date(2027, 12, 30, 1, 0, 0), &fresh, 1, 0, time.Time{}, false},
		{"no table: vote on 30 June", date(2030, 6, 30, 1, 0, 0), nil, -1, -1, date(2030, 6, 30, 23, 59, 59), false},
		{"no table: vote on 31 May is refused", date(2030, 5, 31, 1, 0, 0), nil, 1, 0, time.Time{}, false},
		{"tzif without expiry: vote none uses table", date(2026, 6, 30, 1, 0, 0), &noExpiry, 0, 1, date(2026, 7, 1, 0, 0, 0), false},
		{"tzif without expiry: vote wins (chrony)", date(2026, 6, 30, 1, 0, 0), &noExpiry, -1, -1, date(2026, 6, 30, 23, 59, 59), false},
	}
	for _, c := range cases {
		d := Decide(c.now, c.tb, c.vote)
		if d.Sec != c.sec || !d.At.Equal(c.at) || d.Overruled != c.over {
			t.Errorf("%s: got %+v, want sec %d at %v overruled %v", c.name, d, c.sec, c.at, c.over)
		}
	}
}

func TestRamp(t *testing.T) {
	step := Ramp{}
	if step.Fraction(-time.Nanosecond) != 0 || step.Fraction(0) != 1 || step.Length() != 0 {
		t.Error("step ramp")
	}
	slew := Ramp{Rate: SlewRate}
	if got := slew.Fraction(6 * time.Second); math.Abs(got-0.5) > 1e-9 {
		t.Errorf("slew at 6 s: %v", got)
	}
	if slew.Fraction(13*time.Second) != 1 || slew.Length() != 12*time.Second {
		t.Error("slew end")
	}
}

// chrony documents `smoothtime 400 0.001 leaponly` as smoothing a leap
// second out in about 17 hours; the spline's frequency never exceeds max-freq,
// the fraction only grows, and it ends at exactly 1.
func TestSmooth(t *testing.T) {
	s := NewSmooth(400e-6, 0.001e-6)
	if h := s.Length() / 3600; h < 17 || h > 18 {
		t.Errorf("length %.2f h, want about 17.6", h)
	}
	r := Ramp{Smooth: s}
	prev, prevT := 0.0, 0.0
	for ts := 0.0; ts <= s.Length()+100; ts += 60 {
		f := r.Fraction(time.Duration(ts * float64(time.Second)))
		if f < prev-1e-12 {
			t.Fatalf("fraction fell at %v s", ts)
		}
		if ts > 0 && (f-prev)/(ts-prevT) > 400e-6+1e-9 {
			t.Fatalf("rate %v above max-freq at %v s", (f-prev)/(ts-prevT), ts)
		}
		prev, prevT = f, ts
	}
	if prev != 1 {
		t.Errorf("end fraction %v", prev)
	}
	// A low max-freq adds a constant-rate middle stage.
	s = NewSmooth(10e-6, 0.001e-6)
	if s.stages[1].length <= 0 || math.Abs(s.MaxRate()-10e-6) > 1e-12 {
		t.Errorf("clamped stages %+v", s.stages)
	}
	if rem := s.Remaining(s.Length()); math.Abs(rem) > 1e-6 {
		t.Errorf("remaining at end %v", rem)
	}
}
