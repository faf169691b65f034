package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"timegate/audit"
	iaudit "timegate/internal/audit"
	"timegate/internal/gateway"
)

// auditFixture writes a real audit log through the daemon's writer: start,
// 20 events, stop, a checkpoint every 5 records (and at start and stop).
func auditFixture(t *testing.T) (dir, logPath, keyPath string, lines []string) {
	t.Helper()
	dir = t.TempDir()
	keyPath = filepath.Join(dir, iaudit.KeyFileName)
	s, _, err := iaudit.LoadOrCreateKey(keyPath, audit.MLDSA65, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	logPath = filepath.Join(dir, "audit.log")
	w, err := iaudit.OpenWriter(iaudit.WriterConfig{Path: logPath, Signer: s, CheckpointRecords: 5},
		audit.Event{Type: audit.TypeStart, Outcome: audit.OutcomeOK})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		w.Record(audit.Event{Type: audit.TypeControlCommand, Outcome: audit.OutcomeOK, Subject: audit.Subject{User: fmt.Sprint("uid", i)}})
	}
	if err := w.Close(audit.Event{Type: audit.TypeStop, Outcome: audit.OutcomeOK}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(logPath)
	lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	return dir, logPath, keyPath, lines
}

func verifyJSON(t *testing.T, file, pub string) (int, verifyResult) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run([]string{"audit", "verify", file, "-pub", pub, "-json"}, &out, &errOut)
	var res verifyResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("exit %d, output %q %q: %v", code, out.String(), errOut.String(), err)
	}
	return code, res
}

func seqOf(t *testing.T, line string) uint64 {
	r, err := audit.Parse([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return r.Seq
}

// TestAuditVerifyTamper: every kind of tampering is named at the exact
// record (line and seq) by `gatectl audit verify`.
func TestAuditVerifyTamper(t *testing.T) {
	dir, logPath, keyPath, lines := auditFixture(t)
	pub := keyPath + ".pub"
	if code, res := verifyJSON(t, logPath, pub); code != 0 || !res.OK || res.Unsigned != 0 || res.Checkpoints < 5 {
		t.Fatalf("intact file: exit %d %+v", code, res)
	}
	// Find the checkpoints and an ordinary record inside a signed stretch.
	var cps []int
	for i, l := range lines {
		if strings.Contains(l, `"type":"audit.checkpoint"`) {
			cps = append(cps, i)
		}
	}
	edit := cps[1] + 2 // an ordinary record between two checkpoints
	write := func(name string, ls []string, tail string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(strings.Join(ls, "\n")+tail), 0o600)
		return p
	}
	clone := func() []string { return append([]string(nil), lines...) }
	cases := []struct {
		name   string
		file   string
		line   int
		seq    uint64
		reason string
	}{
		{"edit", func() string {
			ls := clone()
			ls[edit] = strings.Replace(ls[edit], `"outcome":"ok"`, `"outcome":"denied"`, 1)
			return write("edit", ls, "\n")
		}(), edit + 1, seqOf(t, lines[edit]), "record altered"},
		{"delete", func() string {
			ls := clone()
			return write("delete", append(ls[:edit], ls[edit+1:]...), "\n")
		}(), edit + 1, seqOf(t, lines[edit+1]), "records were removed"},
		{"reorder", func() string {
			ls := clone()
			ls[edit], ls[edit+1] = ls[edit+1], ls[edit]
			return write("reorder", ls, "\n")
		}(), edit + 1, seqOf(t, lines[edit+1]), "records were removed, inserted or reordered"},
		{"truncate-past-checkpoint", write("trunc", clone()[:cps[len(cps)-1]], "\n"),
			cps[len(cps)-2] + 2, seqOf(t, lines[cps[len(cps)-2]+1]), "not covered by a signed checkpoint"},
		{"truncate-mid-line", write("torn", clone()[:edit+1], "\n"+lines[edit+1][:30]), edit + 2, 0, "incomplete last line"},
		{"forged-checkpoint", func() string {
			ls := clone()
			ls[cps[1]] = strings.Replace(ls[cps[1]], `"sig":"`, `"sig":"AAAA`, 1)
			return write("forged", ls, "\n")
		}(), cps[1] + 1, seqOf(t, lines[cps[1]]), "forged checkpoint"},
	}
	for _, c := range cases {
		code, res := verifyJSON(t, c.file, pub)
		if code != exitFail || res.OK || res.BadLine != c.line || res.BadSeq != c.seq || !strings.Contains(res.Problem, c.reason) {
			t.Errorf("%s: exit %d, line %d seq %d %q; want line %d seq %d %q", c.name, code, res.BadLine, res.BadSeq, res.Problem, c.line, c.seq, c.reason)
		}
	}
}

func TestAuditKeyAndUsage(t *testing.T) {
	_, logPath, keyPath, _ := auditFixture(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"audit", "key", "-key", keyPath}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "timegate-audit-pub v1 ml-dsa-65 ") {
		t.Fatalf("exit %d %q %q", code, out.String(), errOut.String())
	}
	os.Remove(keyPath + ".pub") // derived from the private key then
	var out2 bytes.Buffer
	if code := run([]string{"audit", "key", "-key", keyPath}, &out2, &errOut); code != 0 || out2.String() != out.String() {
		t.Fatalf("exit %d %q", code, out2.String())
	}
	pub := filepath.Join(t.TempDir(), "k.pub")
	os.WriteFile(pub, out.Bytes(), 0o644)
	out.Reset()
	if code := run([]string{"audit", "verify", "-pub", pub, logPath}, &out, &errOut); code != 0 || !strings.Contains(out.String(), ": OK: ") {
		t.Fatalf("exit %d %q", code, out.String())
	}
	for _, args := range [][]string{{"audit", "-h"}, {"audit", "key", "-h"}, {"audit", "verify", "-h"}, {"audit", "rotate", "-h"}} {
		if code := run(args, &out, &errOut); code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	for _, args := range [][]string{{"audit"}, {"audit", "frob"}, {"audit", "verify"}, {"audit", "verify", "-live"}, {"audit", "key", "x"}} {
		if code := run(args, &out, &errOut); code != exitUsage {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}

// rotatedFixture writes a rotated audit log as the writer leaves it: two
// sealed segments (seq 1..6 and 7..14, each closed by a checkpoint) and
// the live file (15..20), every file after the first starting with an
// audit.segment record. It returns the files in the shell glob's order.
func rotatedFixture(t *testing.T) (logPath, pub string, files []string, lines [][]string) {
	t.Helper()
	dir := t.TempDir()
	keyPath := filepath.Join(dir, iaudit.KeyFileName)
	s, _, err := iaudit.LoadOrCreateKey(keyPath, audit.Ed25519, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	logPath = filepath.Join(dir, "audit.log")
	var c audit.Chain
	now := t0
	prevSegment := ""
	for i, events := range []int{5, 6, 4} {
		first := c.Seq + 1
		var ls []string
		if i > 0 {
			ls = append(ls, string(c.Append(audit.Event{Type: audit.TypeSegment, Outcome: audit.OutcomeOK,
				Details: map[string]string{"segment": filepath.Base(prevSegment), "last_seq": strconv.FormatUint(c.Seq, 10)}}, now)))
		}
		for j := range events {
			now = now.Add(time.Second)
			ls = append(ls, string(c.Append(audit.Event{Type: audit.TypeControlCommand, Outcome: audit.OutcomeOK,
				Subject: audit.Subject{User: fmt.Sprint("uid", i, j)}}, now)))
		}
		cp, err := c.Checkpoint(s, now)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, string(cp))
		name := logPath
		if i < 2 {
			name = audit.SegmentName(logPath, first)
			prevSegment = name
		}
		if err := os.WriteFile(name, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, ls)
	}
	files, err = filepath.Glob(logPath + "-*")
	if err != nil || len(files) != 2 {
		t.Fatalf("segments %v %v", files, err)
	}
	return logPath, keyPath + ".pub", append(files, logPath), lines
}

func verifyFilesJSON(t *testing.T, pub string, flags []string, files ...string) (int, verifyResult) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append(append([]string{"audit", "verify", "-pub", pub, "-json"}, flags...), files...), &out, &errOut)
	var res verifyResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("exit %d, output %q %q: %v", code, out.String(), errOut.String(), err)
	}
	return code, res
}

// TestAuditVerifyRotated: a rotated log given as the glob lists it verifies
// as one chain; from a later segment on it verifies and says where it
// starts; a missing, misplaced, cut or unsealed segment is named.
func TestAuditVerifyRotated(t *testing.T) {
	logPath, pub, files, lines := rotatedFixture(t)
	seg1, seg2 := files[0], files[1]
	if !strings.HasSuffix(seg2, "audit.log-000000000007") {
		t.Fatalf("glob order: %v", files)
	}
	code, res := verifyFilesJSON(t, pub, nil, files...)
	if code != exitOK || !res.OK || res.Records != 20 || res.FirstSeq != 1 || res.LastSeq != 20 || res.StartsAtSegment ||
		res.File != "" || strings.Join(res.Files, " ") != strings.Join(files, " ") {
		t.Fatalf("whole set: exit %d %+v", code, res)
	}
	var out, errOut bytes.Buffer
	if code := run(append([]string{"audit", "verify", "-pub", pub}, files...), &out, &errOut); code != exitOK ||
		!strings.HasPrefix(out.String(), seg1+" .. "+logPath+" (3 files): OK: 20 records, seq 1..20, 3 checkpoints") ||
		strings.Contains(out.String(), "rotation boundary") {
		t.Fatalf("whole set: exit %d %q %q", code, out.String(), errOut.String())
	}

	// The older segment pruned (or not given): it verifies, and says so.
	code, res = verifyFilesJSON(t, pub, nil, seg2, logPath)
	if code != exitOK || !res.StartsAtSegment || res.FirstSeq != 7 {
		t.Fatalf("from segment 2: exit %d %+v", code, res)
	}
	out.Reset()
	if code := run([]string{"audit", "verify", "-pub", pub, logPath}, &out, &errOut); code != exitOK ||
		!strings.HasPrefix(out.String(), logPath+": OK: 6 records, seq 15..20") ||
		!strings.Contains(out.String(), "starts at a rotation boundary: the records before seq 15 are in earlier segments, not given") {
		t.Fatalf("live file alone: exit %d %q", code, out.String())
	}

	write := func(name string, ls []string, tail string) string {
		p := filepath.Join(filepath.Dir(logPath), name)
		if err := os.WriteFile(p, []byte(strings.Join(ls, "\n")+tail), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	headCut := write("audit.log-000000000008", lines[1][1:], "\n")
	unsealed := write("unsealed", lines[1][:len(lines[1])-1], "\n")
	torn := write("torn", lines[1][:len(lines[1])-1], "\n"+lines[1][len(lines[1])-1][:25])
	cases := []struct {
		name   string
		flags  []string
		files  []string
		bad    string
		line   int
		seq    uint64
		reason string
	}{
		{"missing-middle", nil, []string{seg1, logPath}, logPath, 1, 15, "a segment is missing or the files are out of order"},
		{"out-of-order", nil, []string{seg2, seg1, logPath}, seg1, 1, 1, "out of order"},
		{"head-cut", nil, []string{headCut, logPath}, headCut, 1, 8, "does not start the chain"},
		{"unsealed-middle-live", []string{"-live"}, []string{seg1, unsealed, logPath}, unsealed, 1, 7, "not covered by a signed checkpoint"},
		{"torn-middle-live", []string{"-live"}, []string{seg1, torn, logPath}, torn, 8, 0, "incomplete last line"},
	}
	for _, c := range cases {
		code, res := verifyFilesJSON(t, pub, c.flags, c.files...)
		if code != exitFail || res.OK || res.BadFile != c.bad || res.BadLine != c.line || res.BadSeq != c.seq || !strings.Contains(res.Problem, c.reason) {
			t.Errorf("%s: exit %d, %s line %d seq %d %q; want %s line %d seq %d %q", c.name, code, res.BadFile, res.BadLine, res.BadSeq, res.Problem, c.bad, c.line, c.seq, c.reason)
		}
	}
	out.Reset()
	if code := run([]string{"audit", "verify", "-pub", pub, seg1, logPath}, &out, &errOut); code != exitFail ||
		out.String() != logPath+": BAD: first bad record at line 1 (seq 15): the file starts at seq 15 but the one before it ended at seq 6: a segment is missing or the files are out of order\n" {
		t.Fatalf("text: exit %d %q", code, out.String())
	}
	// An unsigned tail is accepted with -live in the last file only.
	unsealedLive := write("audit.log", lines[2][:len(lines[2])-1], "\n")
	if code, res := verifyFilesJSON(t, pub, []string{"-live"}, seg1, seg2, unsealedLive); code != exitOK || res.Unsigned != 5 {
		t.Fatalf("live tail: exit %d %+v", code, res)
	}
	if code, res := verifyFilesJSON(t, pub, nil, seg1, seg2, unsealedLive); code != exitFail || res.BadFile != unsealedLive {
		t.Fatalf("strict live tail: exit %d %+v", code, res)
	}
	// A file that cannot be read is a failure, not a verdict on the chain.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"audit", "verify", "-pub", pub, seg1, filepath.Join(filepath.Dir(logPath), "gone"), logPath}, &out, &errOut); code != exitFail ||
		out.Len() != 0 || !strings.Contains(errOut.String(), "gone") {
		t.Fatalf("missing file: exit %d %q %q", code, out.String(), errOut.String())
	}
}

// TestAuditRotate: `audit rotate` sends audit.rotate without arguments and
// prints the sealed segment, its range and the pruned ones; -json the
// daemon's answer; its errors map to the control commands' exit codes.
func TestAuditRotate(t *testing.T) {
	path, got := fakeDaemon(t, true)
	var out, errb bytes.Buffer
	if code := run([]string{"-socket", path, "audit", "rotate"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d %s", code, errb.String())
	}
	golden(t, "audit-rotate", out.Bytes())
	out.Reset()
	if code := run([]string{"audit", "rotate", "-json", "-socket", path}, &out, &errb); code != exitOK {
		t.Fatalf("-json: exit %d %s", code, errb.String())
	}
	var res gateway.AuditRotateResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	want := fixture(true)[gateway.CmdAuditRotate].(gateway.AuditRotateResult)
	if res.Segment != want.Segment || res.First != want.First || res.Last != want.Last || len(res.Pruned) != 1 || res.Pruned[0] != want.Pruned[0] {
		t.Fatalf("-json: %+v", res)
	}
	if strings.Join(*got, "\n") != "audit.rotate \naudit.rotate " {
		t.Fatalf("requests: %q", *got)
	}
	if code := run([]string{"-socket", path, "audit", "rotate", "now"}, &out, &errb); code != exitUsage {
		t.Errorf("extra argument: exit %d", code)
	}
	if code := run([]string{"audit", "rotate", "-socket", filepath.Join(t.TempDir(), "none.sock")}, &out, &errb); code != exitNoDaemon {
		t.Errorf("unreachable socket: exit %d", code)
	}
}
