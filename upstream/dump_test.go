package upstream

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// polledSource is a source that has taken n samples 16 s apart ending at end, as if it
// had answered every poll.
func polledSource(n int, end time.Time) *Source {
	s := NewSource(SourceConfig{ID: 1, MinPoll: 4, MaxPoll: 4})
	for i := range n {
		at := end.Add(-time.Duration(n-1-i) * 16 * time.Second)
		s.filter.Add(Sample{Time: at, Offset: ms(1 + float64(i)/10), Delay: ms(2 + float64(i%3)),
			Dispersion: ms(0.5), RootDelay: ms(10), RootDispersion: ms(3), Stratum: 2, Leap: LeapNone}, 0)
		s.reach = s.reach<<1 | 1
		s.stats.Accepted++
	}
	return s
}

func TestSourceDumpRestore(t *testing.T) {
	old := polledSource(10, t0)
	d, ok := old.Dump("192.0.2.1:123 key 7")
	if !ok || len(d.Samples) != NStage || d.Stratum != 2 {
		t.Fatalf("dump %+v %v", d, ok)
	}
	b, _ := d.AppendText(nil)
	d2, err := ParseSourceDump(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	b2, _ := d2.AppendText(nil)
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip:\n%s\n%s", b, b2)
	}
	// Restarted 30 s later: selectable at once, on the same sample, with the downtime's
	// PHI in its root distance.
	now := t0.Add(30 * time.Second)
	fresh := NewSource(SourceConfig{ID: 1, MinPoll: 4, MaxPoll: 4})
	if n := fresh.Restore(d2, now); n != NStage {
		t.Fatalf("restored %d samples, want %d", n, NStage)
	}
	c, ok := fresh.Candidate()
	want, _ := old.Candidate()
	if !ok || !sameStats(c.Stats, want.Stats) || c.Stratum != 2 || c.RootDelay != ms(10) {
		t.Fatalf("restored candidate %+v %v, want %+v", c, ok, want)
	}
	if got, was := c.RootDistance(now), want.RootDistance(now); got != was {
		t.Errorf("root distance %v after the restart, %v had it run on", got, was)
	}
	if !selectableAt(now, &c, DefaultMaxDistance) {
		t.Error("the restored source is not selectable")
	}
}

func TestSourceRestoreDropsOld(t *testing.T) {
	d, _ := polledSource(8, t0).Dump("k")
	// Samples 16 s apart up to t0: at t0 + MaxSampleAge − 40 s the three newest remain.
	now := t0.Add(MaxSampleAge - 40*time.Second)
	if n := NewSource(SourceConfig{ID: 1}).Restore(d, now); n != 3 {
		t.Errorf("restored %d samples, want the 3 younger than MaxSampleAge", n)
	}
	if n := NewSource(SourceConfig{ID: 1}).Restore(d, t0.Add(2*MaxSampleAge)); n != 0 {
		t.Errorf("restored %d samples older than MaxSampleAge", n)
	}
	if n := NewSource(SourceConfig{ID: 1}).Restore(d, t0.Add(-time.Minute)); n != 0 {
		t.Errorf("restored %d samples saved in the future", n)
	}
	unsync := d
	unsync.Leap = LeapUnsynch
	if n := NewSource(SourceConfig{ID: 1}).Restore(unsync, t0); n != 0 {
		t.Errorf("restored %d samples of an unsynchronised server", n)
	}
	busy := polledSource(2, t0)
	if n := busy.Restore(d, t0); n != 0 {
		t.Errorf("restored into a source that has samples of its own")
	}
	if _, ok := NewSource(SourceConfig{ID: 1}).Dump("k"); ok {
		t.Error("a source without samples dumped something")
	}
}

func TestParseSourceDumpRefuses(t *testing.T) {
	good, _ := polledSource(3, t0).Dump("192.0.2.1:123 none")
	b, _ := good.AppendText(nil)
	s := string(b)
	for name, data := range map[string]string{
		"empty":         "",
		"no newline":    strings.TrimSuffix(s, "\n"),
		"other header":  strings.Replace(s, "dump 1", "dump 2", 1),
		"control char":  strings.Replace(s, "none", "no\x1bne", 1),
		"stratum 17":    strings.Replace(s, "header 2 ", "header 17 ", 1),
		"float":         strings.Replace(s, "saved ", "saved 1.", 1),
		"nine samples":  s + strings.Repeat("sample 1 2 3 4\n", 7),
		"extra field":   strings.Replace(s, "header 2 0", "header 2 0 0", 1),
		"too large":     s + strings.Repeat("x", MaxDumpFileSize),
		"chrony's dump": "@SOURCES 4\n",
	} {
		if _, err := ParseSourceDump([]byte(data)); !errors.Is(err, ErrDumpFormat) {
			t.Errorf("%s: %v, want ErrDumpFormat", name, err)
		}
	}
}

// FuzzParseSourceDump: any file parses or is refused without panic; what parses encodes
// back to exactly the same bytes (the format has one spelling), and restoring it into a
// fresh source never panics nor keeps more than NStage samples.
func FuzzParseSourceDump(f *testing.F) {
	d, _ := polledSource(10, t0).Dump("192.0.2.1:123 nts")
	good, _ := d.AppendText(nil)
	f.Add(good)
	f.Add([]byte(dumpHeader + "\nsource x\nsaved 0\nheader 1 0 0 0\n"))
	f.Add([]byte("@SOURCES 4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseSourceDump(data)
		if err != nil {
			return
		}
		b, _ := d.AppendText(nil)
		if !bytes.Equal(b, data) {
			t.Fatalf("parse → encode changed the file:\n%q\n%q", data, b)
		}
		s := NewSource(SourceConfig{ID: 1})
		if n := s.Restore(d, d.Saved.Add(time.Second)); n > NStage || (n > 0) != (s.reach == 1) {
			t.Fatalf("restored %d samples, reach %d", n, s.reach)
		}
	})
}

// sameStats compares filter outputs, times by instant (a parsed time is in time.Local).
func sameStats(a, b Stats) bool {
	ea, ua := a.Epoch, a.Updated
	a.Epoch, a.Updated = b.Epoch, b.Updated
	return a == b && ea.Equal(b.Epoch) && ua.Equal(b.Updated)
}
