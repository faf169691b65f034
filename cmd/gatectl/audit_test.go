package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"timegate/audit"
	iaudit "timegate/internal/audit"
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
	for _, args := range [][]string{{"audit", "-h"}, {"audit", "key", "-h"}, {"audit", "verify", "-h"}} {
		if code := run(args, &out, &errOut); code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	for _, args := range [][]string{{"audit"}, {"audit", "frob"}, {"audit", "verify"}, {"audit", "verify", "a", "b"}, {"audit", "key", "x"}} {
		if code := run(args, &out, &errOut); code != exitUsage {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}
