package leap

import (
	"os"
	"testing"
	"time"
)

// checkTable asserts what every table a parser accepts must satisfy.
func checkTable(t *testing.T, tb *Table) {
	t.Helper()
	if len(tb.Entries) == 0 || len(tb.Entries) > MaxEntries+1 {
		t.Fatalf("%d entries", len(tb.Entries))
	}
	for i := 1; i < len(tb.Entries); i++ {
		e, p := tb.Entries[i], tb.Entries[i-1]
		if !e.At.After(p.At) || (e.TAI-p.TAI != 1 && e.TAI-p.TAI != -1) || !e.At.Equal(dayStart(e.At)) {
			t.Fatalf("bad entries %v, %v", p, e)
		}
	}
	now := tb.Entries[len(tb.Entries)-1].At.Add(-time.Hour)
	if d := Decide(now, tb, 1); d.Sec < -1 || d.Sec > 1 {
		t.Fatalf("Decide: %+v", d)
	}
}

func FuzzParseList(f *testing.F) {
	good, err := os.ReadFile("testdata/leap-seconds.list")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("#$ 1\n#@ 2\n2272060800 10\n#h 0 0 0 0 0\n"))
	f.Add([]byte("#h 1 2 3 4 5\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := ParseList(b)
		if err != nil {
			return
		}
		checkTable(t, tb)
		// What parses formats back to a file that parses to the same table.
		back, err := ParseList(FormatList(tb))
		if err != nil || len(back.Entries) != len(tb.Entries) || !back.Expires.Equal(tb.Expires) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParseTZif(f *testing.F) {
	good, err := os.ReadFile("testdata/right-UTC.tzif")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:60])
	f.Add([]byte("TZif\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := ParseTZif(b)
		if err != nil {
			return
		}
		checkTable(t, tb)
	})
}
