package audit

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/audit"
)

// readSet returns the records of path's segments and live file in order,
// and the files' contents.
func readSet(t *testing.T, path string) (recs []audit.Record, files [][]byte) {
	t.Helper()
	segs, err := listSegments(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range segs {
		names = append(names, s.path)
	}
	for _, n := range append(names, path) {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, data)
		for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			r, err := audit.Parse(line)
			if err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			recs = append(recs, r)
		}
	}
	return recs, files
}

// verifySet checks the whole set as one chain: the files concatenated in
// order are exactly one verifiable file.
func verifySet(t *testing.T, path string, s *audit.Signer) audit.Summary {
	t.Helper()
	_, files := readSet(t, path)
	pub := s.Public()
	sum, err := audit.Verify(bytes.NewReader(bytes.Join(files, nil)), audit.VerifyOptions{Key: &pub})
	if err != nil {
		t.Fatalf("the rotated set does not verify as one chain: %v", err)
	}
	return sum
}

// checkSegments: every segment is named for its first record, ends with a
// checkpoint, and every file after the first starts with an audit.segment
// record naming the segment before it.
func checkSegments(t *testing.T, path string) int {
	t.Helper()
	segs, _ := listSegments(path)
	prevName := ""
	for i, n := range append(segs, segment{path: path}) {
		data, _ := os.ReadFile(n.path)
		lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		first, _ := audit.Parse(lines[0])
		last, _ := audit.Parse(lines[len(lines)-1])
		if i < len(segs) {
			if first.Seq != n.first || last.Type != audit.TypeCheckpoint {
				t.Errorf("%s: first seq %d, last record %s", n.path, first.Seq, last.Type)
			}
		}
		if prevName != "" && (first.Type != audit.TypeSegment || first.Details["segment"] != prevName) {
			t.Errorf("%s starts with %s %v, want audit.segment naming %s", n.path, first.Type, first.Details, prevName)
		}
		prevName = filepath.Base(n.path)
	}
	return len(segs)
}

func TestWriterRotatesBySize(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg := WriterConfig{Path: path, Signer: s, NoSync: true, RotateSize: 4 << 10, CheckpointRecords: 50}
	for run := range 2 { // the second run resumes in the newest live file
		w, err := OpenWriter(cfg, startEv)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			// One record per write, whatever the machine's load: rotation
			// is checked after each write, so a segment then ends within
			// a record (and a checkpoint) of the size.
			seq := w.Seq()
			w.Record(ev(run*1000 + i))
			for w.Seq() == seq {
				<-w.Notify()
			}
		}
		if err := w.Close(stopEv); err != nil {
			t.Fatal(err)
		}
	}
	n := checkSegments(t, path)
	if n < 10 {
		t.Fatalf("%d segments from ~600 records rotating at 4 KiB", n)
	}
	sum := verifySet(t, path, s)
	recs, _ := readSet(t, path)
	if sum.FirstSeq != 1 || int(sum.LastSeq) != len(recs) {
		t.Fatalf("%+v, %d records", sum, len(recs))
	}
	for _, fi := range mustGlob(t, path+"-*") {
		if st, _ := os.Stat(fi); st.Size() > 4<<10+int64(audit.MaxLineLen)*2 {
			t.Errorf("%s is %d bytes: rotation at 4 KiB let it grow", fi, st.Size())
		}
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWriterRetention: keep N deletes the oldest segments beyond N, oldest
// first, records each deletion, and never deletes one holding a record at
// or after the pin (what the shipper has not delivered).
func TestWriterRetention(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	var clock atomic.Int64 // the writer's clock, moved by hand
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true, Keep: 2, Now: now, Log: zaptest.NewLogger(t)}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	var pin atomic.Uint64
	pin.Store(1) // nothing delivered yet
	w.SetPin(pin.Load)
	var results []RotateResult
	rotate := func() RotateResult {
		t.Helper()
		for i := range 5 {
			w.Record(ev(i))
		}
		waitUntil(t, 5*time.Second, func() bool { return len(w.queue) == 0 })
		r, err := w.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		if r.Segment != audit.SegmentName(path, r.First) || r.Last < r.First {
			t.Fatalf("%+v", r)
		}
		results = append(results, r)
		return r
	}
	for range 4 {
		if r := rotate(); len(r.Pruned) != 0 {
			t.Fatalf("pruned %v with nothing delivered", r.Pruned)
		}
	}
	if n := len(mustGlob(t, path+"-*")); n != 4 {
		t.Fatalf("%d segments kept, want all 4 (undelivered)", n)
	}
	// The collector catches up with the first segment: retention, held
	// back, looks again a minute later without waiting for a rotation.
	pin.Store(results[0].Last + 1)
	clock.Add(int64(2 * time.Minute))
	waitUntil(t, 5*time.Second, func() bool { return len(mustGlob(t, path+"-*")) == 3 })
	if _, err := os.Stat(results[0].Segment); err == nil {
		t.Fatal("retention deleted another segment than the delivered oldest one")
	}
	// Then with the second; the third is not delivered and stays.
	pin.Store(results[1].Last + 1)
	r := rotate()
	if len(r.Pruned) != 1 || r.Pruned[0] != results[1].Segment {
		t.Fatalf("pruned %v, want only the second (delivered) segment", r.Pruned)
	}
	pin.Store(0) // no shipper: keep alone decides
	r = rotate()
	if len(r.Pruned) != 2 || r.Pruned[0] != results[2].Segment {
		t.Fatalf("pruned %v, want the next two oldest", r.Pruned)
	}
	if err := w.Close(stopEv); err != nil {
		t.Fatal(err)
	}
	if n := len(mustGlob(t, path+"-*")); n != 2 {
		t.Fatalf("%d segments left, want keep 2", n)
	}
	recs, _ := readSet(t, path)
	var prunes []string
	for _, r := range recs {
		if r.Type == audit.TypeSegmentPrune {
			prunes = append(prunes, r.Details["segment"]+":"+r.Details["first_seq"]+"-"+r.Details["last_seq"])
		}
	}
	if len(prunes) != 4 || !strings.HasPrefix(prunes[0], filepath.Base(results[0].Segment)+":") {
		t.Fatalf("prune records %v", prunes)
	}
	checkSegments(t, path)
	// What is left starts at a rotation boundary: its first record is
	// audit.segment, and the chain from there on is whole.
	if recs[0].Type != audit.TypeSegment {
		t.Fatalf("oldest kept file starts with %s", recs[0].Type)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq != recs[i-1].Seq+1 {
			t.Fatalf("seq %d after %d", recs[i].Seq, recs[i-1].Seq)
		}
	}
	// The verifier finds the prune record that accounts for the missing
	// head; with the oldest kept segment deleted by hand, none does.
	pub := s.Public()
	open := func(name string) (io.ReadCloser, error) { return os.Open(name) }
	kept := append(mustGlob(t, path+"-*"), path)
	sum, err := audit.VerifyFiles(kept, open, audit.VerifyOptions{Key: &pub})
	var want uint64
	for _, r := range recs {
		if r.Type == audit.TypeSegmentPrune && r.Details["last_seq"] == strconv.FormatUint(recs[0].Seq-1, 10) {
			want = r.Seq
		}
	}
	if err != nil || !sum.StartsAtSegment || want == 0 || sum.HeadPrunedBy != want {
		t.Fatalf("kept set: %v, %+v, want the head pruned by seq %d", err, sum, want)
	}
	if err := os.Remove(kept[0]); err != nil {
		t.Fatal(err)
	}
	sum, err = audit.VerifyFiles(kept[1:], open, audit.VerifyOptions{Key: &pub})
	if err != nil || !sum.StartsAtSegment || sum.HeadPrunedBy != 0 {
		t.Fatalf("oldest kept segment deleted by hand: %v, %+v, want no prune record to account for it", err, sum)
	}
}

// TestRotationCrashPoints: whatever instant a rotation dies at, the next
// start continues one chain: a spare segment link (died between link and
// rename) is removed, a half-made new file is discarded, and a live file
// that is gone altogether (removed by hand) is recorded, not hidden.
func TestRotationCrashPoints(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg := WriterConfig{Path: path, Signer: s, NoSync: true, Log: zaptest.NewLogger(t)}
	w, err := OpenWriter(cfg, startEv)
	if err != nil {
		t.Fatal(err)
	}
	w.Record(ev(1))
	if _, err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	w.Record(ev(2))
	w.Close(stopEv)

	// Died after the link: the live file also has its segment name, and a
	// new file was being written.
	first := w.Position().First
	if err := os.Link(path, audit.SegmentName(path, first)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path+".rotating", []byte("half a line"), 0o600)
	w, err = OpenWriter(cfg, startEv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(audit.SegmentName(path, first)); err == nil {
		t.Fatal("spare segment link left in place")
	}
	if _, err := os.Stat(path + ".rotating"); err == nil {
		t.Fatal("half-made new file left in place")
	}
	if _, err := w.Rotate(); err != nil {
		t.Fatalf("rotation after the crash: %v", err)
	}
	w.Close(stopEv)
	verifySet(t, path, s)

	// The live file removed by hand: the chain goes on from the newest
	// segment, and its first record says what happened.
	os.Remove(path)
	w, err = OpenWriter(cfg, startEv)
	if err != nil {
		t.Fatal(err)
	}
	w.Close(stopEv)
	data, _ := os.ReadFile(path)
	r, _ := audit.Parse(data[:bytes.IndexByte(data, '\n')])
	if r.Type != audit.TypeRecovered || r.Details["segment"] == "" {
		t.Fatalf("first record after the removal: %s %v", r.Type, r.Details)
	}
	verifySet(t, path, s)
}

// TestShipperAcrossRotations: the shipper reads a segment to its end and
// goes on in the next file, while rotations happen under it; a restart
// with the cursor in a segment that has since been sealed resumes there
// without re-sending what was acknowledged; retention waits for delivery.
func TestShipperAcrossRotations(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true, RotateSize: 8 << 10, Keep: 3,
		CheckpointRecords: 100, Log: zaptest.NewLogger(t)}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(stopEv)
	col := startFakeRELP(t, 0)
	cfg := ShipConfig{Transport: "relp", Addr: col.ln.Addr().String(), Cursor: path + ".shipped", Log: zaptest.NewLogger(t)}
	sh, stop := runShipper(t, cfg, w)
	w.SetPin(sh.Pin)
	for i := range 1500 {
		w.Record(ev(i))
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitUntil(t, 20*time.Second, func() bool { return w.Seq() > 1500 && sh.Status().AckedSeq == w.Seq() })
	stop()
	// Rotations happened all along (the live file starts past most of the
	// records): whatever retention left, the shipper crossed them.
	if first := w.Position().First; first < 1000 {
		t.Fatalf("the live file starts at seq %d: too few rotations for the test", first)
	}
	got := col.got()
	for seq := uint64(1); seq <= w.Seq(); seq++ {
		if got[seq] == 0 {
			t.Fatalf("seq %d never delivered across rotations", seq)
		}
	}

	// Shipper stopped (collector unreachable, or a restart): rotations go
	// on, and retention must keep everything undelivered.
	acked := sh.Status().AckedSeq
	before := len(col.got())
	for i := range 1500 {
		w.Record(ev(10000 + i))
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitUntil(t, 10*time.Second, func() bool { return w.Seq() > acked+1500 })
	if _, err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(path)
	if len(segs) <= 3 || segs[0].first > acked+1 {
		t.Fatalf("retention deleted undelivered records: oldest segment starts at %d, acked %d (%d segments)", segs[0].first, acked, len(segs))
	}
	sh, stop = runShipper(t, cfg, w)
	w.SetPin(sh.Pin)
	waitUntil(t, 20*time.Second, func() bool { return sh.Status().AckedSeq == w.Seq() })
	stop()
	after := col.got()
	for seq := uint64(1); seq <= w.Seq(); seq++ {
		if after[seq] == 0 {
			t.Fatalf("seq %d never delivered after the restart", seq)
		}
		if seq <= acked && after[seq] != got[seq] {
			t.Fatalf("seq %d, acknowledged before the restart, was sent again", seq)
		}
	}
	if len(after) != before+int(w.Seq()-acked) {
		t.Fatalf("%d distinct after restart, want %d", len(after), before+int(w.Seq()-acked))
	}
	// Delivered now: the next rotation prunes down to keep.
	r, err := w.Rotate()
	if err != nil || len(r.Pruned) == 0 {
		t.Fatalf("rotation after delivery pruned %v (%v)", r.Pruned, err)
	}
	if n := len(mustGlob(t, path+"-*")); n != 3 {
		t.Fatalf("%d segments after delivery, want keep 3", n)
	}
}

// TestShipperDropOldestAcrossSegments: with drop-oldest, a backlog spread
// over several segments is given up oldest first, across file boundaries,
// and what is left is shipped.
func TestShipperDropOldestAcrossSegments(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true, RotateSize: 4 << 10}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(stopEv)
	for i := range 400 {
		w.Record(ev(i))
		if i%20 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitUntil(t, 10*time.Second, func() bool { return w.Seq() > 400 })
	col := startFakeRELP(t, 0)
	sh, stop := runShipper(t, ShipConfig{Transport: "relp", Addr: col.ln.Addr().String(), Cursor: path + ".shipped",
		SpoolMax: 16 << 10, Overflow: OverflowDropOldest, Rec: w, Log: zaptest.NewLogger(t)}, w)
	defer stop()
	waitUntil(t, 20*time.Second, func() bool { st := sh.Status(); return st.Skipped > 0 && st.AckedSeq == w.Seq() })
	st := sh.Status()
	got := col.got()
	first := w.Seq()
	for seq := range got {
		first = min(first, seq)
	}
	if uint64(len(got)) != w.Seq()-first+1 {
		t.Fatalf("delivered %d records from seq %d to %d: a hole", len(got), first, w.Seq())
	}
	if first < 100 || st.Skipped != first-1 {
		t.Fatalf("skipped %d, first delivered %d: want the oldest given up, across segments", st.Skipped, first)
	}
}

// TestRotationFailureShows: a rotation that cannot name its segment leaves
// the live file as it was (still verifiable, still appended to) and shows
// in Stats until a rotation succeeds.
func TestRotationFailureShows(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	blocker := audit.SegmentName(path, w.Position().First)
	if err := os.WriteFile(blocker, []byte("not ours\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Rotate(); err == nil {
		t.Fatal("rotated onto an existing file")
	}
	if st := w.Stats(); !strings.Contains(st.RotateError, "already exists") || st.Segments != 0 {
		t.Fatalf("after a failed rotation: %+v", st)
	}
	w.Record(ev(1))
	os.Remove(blocker)
	waitUntil(t, 5*time.Second, func() bool { return len(w.queue) == 0 })
	if _, err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.RotateError != "" || st.Segments != 1 {
		t.Fatalf("after a good rotation: %+v", st)
	}
	w.Close(stopEv)
	verifySet(t, path, s)
}

// BenchmarkRotate measures one rotation as the writer's goroutine does it
// (the sealing checkpoint, the segment link, the new file synced and
// renamed in, the directory synced): the time the log takes no records.
// One record before each, so that every rotation has something to seal.
func BenchmarkRotate(b *testing.B) {
	for _, alg := range []audit.Alg{audit.Ed25519, audit.MLDSA65} {
		b.Run(string(alg), func(b *testing.B) {
			s := testKey(b, alg)
			path := filepath.Join(b.TempDir(), "audit.log")
			w, err := OpenWriter(WriterConfig{Path: path, Signer: s}, startEv)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close(stopEv)
			var spent time.Duration
			for i := range b.N {
				seq := w.Seq()
				w.Record(ev(i))
				for w.Seq() == seq {
					<-w.Notify()
				}
				start := time.Now()
				if _, err := w.Rotate(); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(start)
			}
			b.ReportMetric(float64(spent.Microseconds())/float64(b.N), "µs/rotation")
		})
	}
}

// TestWriterRotatesByInterval: with RotateEvery the live file is sealed at
// the first boundary of the UTC clock after its first record (an hour here:
// on the hour), and the next file's boundary counts from its own start; a
// restart takes the live file's start from its first record.
func TestWriterRotatesByInterval(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 5, 10, 30, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	cfg := WriterConfig{Path: path, Signer: s, NoSync: true, RotateEvery: time.Hour, Now: now, Log: zaptest.NewLogger(t)}
	w, err := OpenWriter(cfg, startEv)
	if err != nil {
		t.Fatal(err)
	}
	segments := func() int { return len(mustGlob(t, path+"-*")) }
	clock.Store(time.Date(2026, 12, 5, 10, 59, 59, 0, time.UTC).UnixNano())
	time.Sleep(1500 * time.Millisecond) // a tick of the writer
	if n := segments(); n != 0 {
		t.Fatalf("%d segments before the hour", n)
	}
	clock.Store(time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC).UnixNano())
	waitUntil(t, 5*time.Second, func() bool { return segments() == 1 })
	w.Close(stopEv)

	// Restarted at 11:30, the live file (started 11:00) is due at 12:00.
	clock.Store(time.Date(2026, 12, 5, 11, 30, 0, 0, time.UTC).UnixNano())
	if w, err = OpenWriter(cfg, startEv); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := segments(); n != 1 {
		t.Fatalf("%d segments at 11:30, want still 1", n)
	}
	clock.Store(time.Date(2026, 12, 5, 12, 0, 1, 0, time.UTC).UnixNano())
	waitUntil(t, 5*time.Second, func() bool { return segments() == 2 })
	w.Close(stopEv)
	recs, _ := readSet(t, path)
	var whys []string
	for _, r := range recs {
		if r.Type == audit.TypeSegment {
			whys = append(whys, r.Details["why"])
		}
	}
	if strings.Join(whys, ",") != "interval,interval" {
		t.Fatalf("rotations: %v", whys)
	}
	verifySet(t, path, s)
}

// TestShipperCursorInPrunedSegment: the collector has everything up to the
// checkpoint that sealed a segment (the cursor at the segment's end), and
// retention then deletes that segment (keep 1, during an outage): a
// restart goes on from the next file, whose first record chains onto the
// cursor's line, without sending anything twice or skipping anything (and
// without taking the cursor for a stale one); a shipper that was running
// through the outage reconnects and goes on alike. past, which moves a
// running shipper's position when it must seek back into a file that is
// gone (records sent past the seal and not acknowledged), is checked
// directly.
func TestShipperCursorInPrunedSegment(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true, Keep: 1, Log: zaptest.NewLogger(t)}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(stopEv)
	for i := range 20 {
		w.Record(ev(i))
	}
	waitUntil(t, 5*time.Second, func() bool { return len(w.queue) == 0 })
	r, err := w.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	// The cursor a shipper saves once the seal is acknowledged.
	data, err := os.ReadFile(r.Segment)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	cur := Cursor{Seq: r.Last, Offset: int64(len(data)), Hash: audit.HashLine(lines[len(lines)-1])}
	cfg := ShipConfig{Transport: "relp", Cursor: path + ".shipped", Log: zaptest.NewLogger(t)}
	if err := saveCursor(cfg.Cursor, cur); err != nil {
		t.Fatal(err)
	}
	w.SetPin(func() uint64 { return r.Last + 1 })
	for range 3 {
		w.Record(ev(100))
		waitUntil(t, 5*time.Second, func() bool { return len(w.queue) == 0 })
		if _, err := w.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(r.Segment); err == nil {
		t.Fatalf("%s, delivered, was kept beyond keep 1", r.Segment)
	}
	segs, _ := listSegments(path)
	if len(segs) == 0 || segs[0].first != r.Last+1 {
		t.Fatalf("segments %v: the undelivered ones from %d on must stay", segs, r.Last+1)
	}

	// The running shipper's way: past moves the cursor to the next file.
	st := newStream(path, w, zaptest.NewLogger(t))
	cur.File = r.First
	if got := st.past(cur); got.File != r.Last+1 || got.Offset != 0 || got.Seq != cur.Seq {
		t.Fatalf("past %+v → %+v", cur, got)
	}

	// A restart: the saved cursor names a line in a pruned segment.
	col := startFakeRELP(t, 0)
	cfg.Addr = col.ln.Addr().String()
	sh, stop := runShipper(t, cfg, w)
	waitUntil(t, 10*time.Second, func() bool { return sh.Status().AckedSeq == w.Seq() })
	stop()
	check := func(phase string, got map[uint64]int, from uint64) {
		t.Helper()
		for seq := uint64(1); seq <= w.Seq(); seq++ {
			if want := seq > from; (got[seq] > 0) != want {
				t.Fatalf("%s: seq %d delivered %d times, want %v (cursor at %d)", phase, seq, got[seq], want, from)
			}
		}
	}
	check("restart", col.got(), r.Last)

	// A running shipper, its cursor at a seal, through an outage in which
	// retention prunes that segment: it reconnects from the next file.
	col2 := startFakeRELP(t, 0)
	col2.down.Store(true)
	cfg.Addr, cfg.Cursor = col2.ln.Addr().String(), path+".shipped2"
	for i := range 5 {
		w.Record(ev(200 + i))
	}
	waitUntil(t, 5*time.Second, func() bool { return len(w.queue) == 0 })
	r2, err := w.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(r2.Segment)
	lines = bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if err := saveCursor(cfg.Cursor, Cursor{Seq: r2.Last, Offset: int64(len(data)), Hash: audit.HashLine(lines[len(lines)-1])}); err != nil {
		t.Fatal(err)
	}
	sh, stop = runShipper(t, cfg, w) // connecting fails: the collector is down
	defer stop()
	w.SetPin(sh.Pin)
	for range 3 {
		w.Record(ev(300))
		waitUntil(t, 5*time.Second, func() bool { return len(w.queue) == 0 })
		if _, err := w.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(r2.Segment); err == nil {
		t.Fatalf("%s kept", r2.Segment)
	}
	col2.down.Store(false)
	waitUntil(t, 20*time.Second, func() bool { return sh.Status().AckedSeq == w.Seq() })
	check("reconnect", col2.got(), r2.Last)
}
