package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rotatedLog is a rotated audit log as the writer leaves it: names[i]
// holds files[i], oldest first; every file but the first starts with a
// TypeSegment record and every file ends with a signed checkpoint.
type rotatedLog struct {
	names []string
	files [][][]byte
}

// buildRotated makes one file per entry of events, with that many events
// in it (after its TypeSegment record) and a closing checkpoint; the last
// file is the live one.
func buildRotated(t testing.TB, s *Signer, events ...int) rotatedLog {
	t.Helper()
	const path = "/var/lib/timegate/audit.log"
	var c Chain
	var log rotatedLog
	now := t0
	for i, n := range events {
		var lines [][]byte
		first := c.Seq + 1
		if i > 0 {
			lines = append(lines, c.Append(Event{Type: TypeSegment, Outcome: OutcomeOK, Details: map[string]string{
				"segment": filepath.Base(log.names[i-1]), "last_seq": strconv.FormatUint(c.Seq, 10)}}, now))
		}
		for j := range n {
			now = now.Add(time.Second)
			lines = append(lines, c.Append(Event{Type: TypeControlCommand, Outcome: OutcomeOK,
				Subject: Subject{User: fmt.Sprint("u", i, j)}}, now))
		}
		cp, err := c.Checkpoint(s, now)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, cp)
		name := path
		if i < len(events)-1 {
			name = SegmentName(path, first)
		}
		log.names = append(log.names, name)
		log.files = append(log.files, lines)
	}
	return log
}

// open serves the files, or the replacement given for a name.
func (l rotatedLog) open(replace map[string][]byte) func(string) (io.ReadCloser, error) {
	return func(name string) (io.ReadCloser, error) {
		if data, ok := replace[name]; ok {
			return io.NopCloser(bytes.NewReader(data)), nil
		}
		for i, n := range l.names {
			if n == name {
				return io.NopCloser(bytes.NewReader(join(l.files[i]))), nil
			}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

func TestVerifyFilesRotated(t *testing.T) {
	s := testSigner(t, Ed25519)
	pub := s.Public()
	log := buildRotated(t, s, 5, 6, 4)
	// Segment 1: seq 1..6 (5 events, a checkpoint); segment 2: 7..14
	// (segment record, 6 events, checkpoint); live: 15..20.
	if first, ok := ParseSegmentName("audit.log", log.names[1]); !ok || first != 7 {
		t.Fatalf("fixture: segment 2 is %s", log.names[1])
	}
	sum, err := VerifyFiles(log.names, log.open(nil), VerifyOptions{Key: &pub})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != 20 || sum.FirstSeq != 1 || sum.LastSeq != 20 || sum.Checkpoints != 3 || sum.StartsAtSegment || sum.Unsigned != 0 {
		t.Fatalf("whole set: %+v", sum)
	}

	// From the second file on: the chain starts at the rotation boundary.
	sum, err = VerifyFiles(log.names[1:], log.open(nil), VerifyOptions{Key: &pub})
	if err != nil || !sum.StartsAtSegment || sum.FirstSeq != 7 || sum.Records != 14 {
		t.Fatalf("from segment 2: %+v %v", sum, err)
	}
	// The live file alone, through the one-file API.
	sum, err = Verify(bytes.NewReader(join(log.files[2])), VerifyOptions{Key: &pub})
	if err != nil || !sum.StartsAtSegment || sum.FirstSeq != 15 {
		t.Fatalf("live file alone: %+v %v", sum, err)
	}
	// A segment record in the middle of a file links like any record:
	// two files joined into one still verify.
	joined := append(append([][]byte{}, log.files[0]...), log.files[1]...)
	sum, err = Verify(bytes.NewReader(join(joined)), VerifyOptions{Key: &pub})
	if err != nil || sum.Records != 14 || sum.StartsAtSegment {
		t.Fatalf("joined segments: %+v %v", sum, err)
	}
}

// TestVerifyFilesProblems: each way a rotated set can be damaged, cut or
// mis-assembled is named at its file, line and seq.
func TestVerifyFilesProblems(t *testing.T) {
	s := testSigner(t, Ed25519)
	pub := s.Public()
	log := buildRotated(t, s, 5, 6, 4)
	seg1, seg2, live := log.names[0], log.names[1], log.names[2]
	f1 := log.files[1] // seq 7..14
	cases := []struct {
		name    string
		names   []string
		replace map[string][]byte
		live    bool
		file    string
		line    int
		seq     uint64
		want    string
	}{
		{"head-cut-segment-record", []string{seg2, live}, map[string][]byte{seg2: join(f1[1:])}, false,
			seg2, 1, 8, "does not start the chain"},
		{"head-cut-more", []string{seg2, live}, map[string][]byte{seg2: join(f1[3:])}, false,
			seg2, 1, 10, "does not start the chain"},
		{"head-cut-in-middle-file", log.names, map[string][]byte{seg2: join(f1[2:])}, false,
			seg2, 1, 9, "a segment is missing or the files are out of order"},
		{"middle-unsigned-tail", log.names, map[string][]byte{seg2: join(f1[:len(f1)-1])}, false,
			seg2, 1, 7, "not covered by a signed checkpoint"},
		{"middle-unsigned-tail-live", log.names, map[string][]byte{seg2: join(f1[:len(f1)-1])}, true,
			seg2, 1, 7, "not covered by a signed checkpoint"},
		{"middle-torn", log.names, map[string][]byte{seg2: append(join(f1[:len(f1)-1]), f1[len(f1)-1][:20]...)}, true,
			seg2, len(f1), 0, "incomplete last line"},
		{"middle-empty", log.names, map[string][]byte{seg2: nil}, true, seg2, 1, 0, "no records"},
		{"missing-middle", []string{seg1, live}, nil, false, live, 1, 15, "a segment is missing or the files are out of order"},
		{"wrong-order", []string{seg2, seg1, live}, nil, false, seg1, 1, 1, "out of order"},
		{"wrong-order-tail", []string{seg1, live, seg2}, nil, true, live, 1, 15, "a segment is missing"},
		{"edit-in-segment", log.names, map[string][]byte{seg2: join(append(append([][]byte{}, f1[:3]...),
			append([][]byte{bytes.Replace(f1[3], []byte(`"ok"`), []byte(`"failed"`), 1)}, f1[4:]...)...))}, false,
			seg2, 4, 10, "record altered"},
		{"live-unsigned", log.names, map[string][]byte{live: join(log.files[2][:4])}, false,
			live, 1, 15, "not covered by a signed checkpoint"},
	}
	for _, c := range cases {
		_, err := VerifyFiles(c.names, log.open(c.replace), VerifyOptions{Key: &pub, Live: c.live})
		var p *Problem
		if !errors.As(err, &p) {
			t.Errorf("%s: err %v, want a Problem", c.name, err)
			continue
		}
		if p.File != c.file || p.Line != c.line || p.Seq != c.seq || !strings.Contains(p.Reason, c.want) {
			t.Errorf("%s: %v; want %s line %d seq %d %q", c.name, p, c.file, c.line, c.seq, c.want)
		}
		if !strings.HasPrefix(p.Error(), c.file+": line ") {
			t.Errorf("%s: %q does not name the file", c.name, p.Error())
		}
	}
}

// TestVerifyFilesLive: -live accepts an unsigned tail and a torn line in
// the last file, and nowhere else.
func TestVerifyFilesLive(t *testing.T) {
	s := testSigner(t, Ed25519)
	pub := s.Public()
	log := buildRotated(t, s, 3, 3, 3)
	f := log.files[2]
	tail := append(join(f[:len(f)-1]), `{"v":1,"seq"`...)
	open := log.open(map[string][]byte{log.names[2]: tail})
	if _, err := VerifyFiles(log.names, open, VerifyOptions{Key: &pub, Live: true}); err != nil {
		t.Fatalf("live tail: %v", err)
	}
	var p *Problem
	if _, err := VerifyFiles(log.names, open, VerifyOptions{Key: &pub}); !errors.As(err, &p) || p.File != log.names[2] || !strings.Contains(p.Reason, "incomplete last line") {
		t.Fatalf("strict: %v", err)
	}
}

func TestVerifyFilesOpenError(t *testing.T) {
	s := testSigner(t, Ed25519)
	pub := s.Public()
	log := buildRotated(t, s, 2, 2)
	names := []string{log.names[0], "/nonexistent", log.names[1]}
	_, err := VerifyFiles(names, log.open(nil), VerifyOptions{Key: &pub})
	var p *Problem
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &p) {
		t.Fatalf("err %v, want the open error", err)
	}
	if _, err := VerifyFiles(nil, log.open(nil), VerifyOptions{Key: &pub}); err == nil {
		t.Fatal("no files verified")
	}
}
