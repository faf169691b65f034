package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"timegate/audit"
)

// TestWriterStatsFailing: a failed write marks the log failing and counts
// its events as dropped, keeping the count an earlier audit.dropped record
// was about to tell; the next write that reaches the disk clears failing,
// records the whole count, and leaves the total and the last error.
func TestWriterStatsFailing(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Failing || st.LastError != "" || st.DroppedTotal != 0 || st.Path != path {
		t.Fatalf("fresh writer: %+v", st)
	}
	if err := w.Close(stopEv); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Record(ev(i)) // after Close: lost, counted
	}
	if st := w.Stats(); st.DroppedTotal != 3 || w.Dropped() != 3 || st.Failing {
		t.Fatalf("after 3 events past Close: %+v, pending %d", st, w.Dropped())
	}
	// The writer's goroutine has ended (Close waited for it), so the test
	// may drive write itself; the closed file makes it fail.
	if err := w.write([]audit.Event{ev(10), ev(11)}, false); err == nil {
		t.Fatal("write to a closed file succeeded")
	}
	st := w.Stats()
	if !st.Failing || st.LastError == "" || st.DroppedTotal != 5 || w.Dropped() != 5 {
		t.Fatalf("after a failed write of 2 events: %+v, pending %d; want failing, 5 dropped", st, w.Dropped())
	}
	seq := st.Seq
	if w.f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
		t.Fatal(err)
	}
	defer w.f.Close()
	if err := w.write(nil, false); err != nil {
		t.Fatal(err)
	}
	st = w.Stats()
	if st.Failing || st.LastError == "" || st.DroppedTotal != 5 || w.Dropped() != 0 || st.Seq != seq+1 {
		t.Fatalf("after a write that succeeded: %+v, pending %d; want not failing, the error kept, 5 in total", st, w.Dropped())
	}
	data, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	r, err := audit.Parse(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != audit.TypeDropped || r.Details["count"] != "5" {
		t.Fatalf("last record %s %v, want audit.dropped with count 5", r.Type, r.Details)
	}
}

// TestWriterStatsSegments: the segments and the bytes on disk are the
// sealed files and the live one, as the writer counts them (Stats reads
// no file: a link made by hand changes nothing); a restart counts them
// again, and retention's deletions come off.
func TestWriterStatsSegments(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Segments != 0 || st.DiskBytes != fileSize(t, path) {
		t.Fatalf("before any rotation: %+v, live file %d bytes", st, fileSize(t, path))
	}
	for range 2 {
		for i := range 5 {
			w.Record(ev(i))
		}
		waitUntil(t, 5*time.Second, func() bool { return len(w.queue) == 0 })
		if _, err := w.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if st := w.Stats(); st.Segments != 2 || st.Seq != w.Seq() {
		t.Fatalf("after 2 rotations: %+v, seq %d", st, w.Seq())
	}
	if err := w.Close(stopEv); err != nil {
		t.Fatal(err)
	}
	want := fileSize(t, path)
	for _, seg := range mustGlob(t, path+"-*") {
		want += fileSize(t, seg)
	}
	st := w.Stats()
	if st.Segments != 2 || st.DiskBytes != want {
		t.Fatalf("%+v, want 2 segments and %d bytes", st, want)
	}
	if err := os.Link(path, audit.SegmentName(path, w.Position().First)); err != nil {
		t.Fatal(err)
	}
	if got := w.Stats(); got.Segments != 2 || got.DiskBytes != want {
		t.Fatalf("with the live file linked under its segment name: %+v, want 2 segments and %d bytes", got, want)
	}
	os.Remove(audit.SegmentName(path, w.Position().First))

	w, err = OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true, Keep: 1}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Segments != 2 {
		t.Fatalf("after a restart: %+v, want the 2 segments counted", st)
	}
	r, err := w.Rotate()
	if err != nil || len(r.Pruned) != 2 {
		t.Fatalf("rotation with keep 1 pruned %v (%v)", r.Pruned, err)
	}
	w.Close(stopEv)
	want = fileSize(t, path)
	for _, seg := range mustGlob(t, path+"-*") {
		want += fileSize(t, seg)
	}
	if st := w.Stats(); st.Segments != 1 || st.DiskBytes != want {
		t.Fatalf("after retention: %+v, want 1 segment and %d bytes", st, want)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
