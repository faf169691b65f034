package leap

import (
	"errors"
	"time"
)

// Errors returned by the parsers. Each is wrapped with the detail (a line
// number, a field) so that the configuration error names what is wrong.
var (
	ErrSyntax   = errors.New("leap: malformed table")
	ErrHash     = errors.New("leap: hash does not match the contents")
	ErrNoHash   = errors.New("leap: no hash line")
	ErrTooLarge = errors.New("leap: table too large")
	ErrOrder    = errors.New("leap: entries out of order")
)

// Limits on hostile or broken input. The real tables hold 28 entries (1972
// to 2017) and are about 5 KB; these bounds leave centuries of room and still
// keep a parse to a few kilobytes of memory.
const (
	// MaxFileSize is the largest table file read (leap-seconds.list or TZif).
	MaxFileSize = 1 << 20
	// MaxEntries is the most leap entries a table may hold.
	MaxEntries = 1024
)

// BaseTAI is TAI − UTC when UTC with leap seconds began, 1 January 1972.
const BaseTAI = 10

// Entry says that from At (a UTC midnight, POSIX time) TAI − UTC is TAI
// seconds. The leap second itself is the last second of the day before At.
type Entry struct {
	At  time.Time
	TAI int
}

// Table is an ordered list of leap seconds with the time after which it can
// no longer be trusted to list every leap to come.
type Table struct {
	Entries []Entry
	// Updated is when the table's publisher last changed it; zero if unknown.
	Updated time.Time
	// Expires is when the table stops being authoritative: a leap second
	// announced after the publisher wrote it may fall after this. Zero: the
	// table does not say (a TZif file without an expiry record).
	Expires time.Time
}

// Expired reports whether t is at or past the table's expiry date.
func (tb *Table) Expired(t time.Time) bool {
	return !tb.Expires.IsZero() && !t.Before(tb.Expires)
}

// TAI returns TAI − UTC at t by the table (BaseTAI before its first entry).
func (tb *Table) TAI(t time.Time) int {
	tai := BaseTAI
	for _, e := range tb.Entries {
		if t.Before(e.At) {
			break
		}
		tai = e.TAI
	}
	return tai
}

// Due returns the leap second the table lists at the end of t's UTC day:
// +1 for an inserted second (23:59:60), −1 for a deleted one (23:59:59 is
// skipped), 0 for none.
func (tb *Table) Due(t time.Time) int {
	next := dayStart(t).Add(24 * time.Hour)
	prev := BaseTAI
	for _, e := range tb.Entries {
		if e.At.Equal(next) {
			return sign(e.TAI - prev)
		}
		if e.At.After(next) {
			break
		}
		prev = e.TAI
	}
	return 0
}

// check validates what both parsers produce: strictly increasing midnights,
// TAI changing by exactly one second at each (the first entry may set the
// base), and entries at UTC midnight only.
func (tb *Table) check() error {
	if len(tb.Entries) > MaxEntries {
		return ErrTooLarge
	}
	for i, e := range tb.Entries {
		if !e.At.Equal(dayStart(e.At)) {
			return errors.Join(ErrSyntax, errors.New("leap not at a UTC midnight: "+e.At.UTC().Format(time.RFC3339)))
		}
		if i == 0 {
			continue
		}
		p := tb.Entries[i-1]
		if !e.At.After(p.At) {
			return errors.Join(ErrOrder, errors.New(e.At.UTC().Format(time.DateOnly)))
		}
		if d := e.TAI - p.TAI; d != 1 && d != -1 {
			return errors.Join(ErrSyntax, errors.New("TAI − UTC must change by one second at "+e.At.UTC().Format(time.DateOnly)))
		}
	}
	return nil
}

func dayStart(t time.Time) time.Time {
	return t.UTC().Truncate(24 * time.Hour)
}

func sign(n int) int {
	switch {
	case n > 0:
		return 1
	case n < 0:
		return -1
	}
	return 0
}
