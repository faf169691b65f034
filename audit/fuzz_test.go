package audit

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// FuzzParse: whatever Parse accepts re-encodes to the very same bytes (one
// spelling per record), and a line Parse accepts stays within MaxLineLen.
func FuzzParse(f *testing.F) {
	var c Chain
	f.Add(c.Append(Event{Type: TypeStart, Outcome: OutcomeOK, Subject: Subject{User: "root"}}, t0))
	f.Add(c.Append(Event{Type: TypeRateLimited, Outcome: OutcomeDenied, Details: map[string]string{"count": "5"}}, t0))
	s := testSigner(f, Ed25519)
	cp, _ := c.Checkpoint(s, t0)
	f.Add(cp)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := Parse(line)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Encode(), line) {
			t.Fatalf("accepted a non-canonical line %q", line)
		}
		if len(line) > MaxLineLen {
			t.Fatal("accepted an over-long line")
		}
	})
}

// FuzzVerify: a file built by the chain, with one fuzzed edit applied,
// verifies only if the edit left it byte-for-byte intact; any real change
// is named as a Problem at a line within the file (never a panic, never
// acceptance of an altered signed file).
func FuzzVerify(f *testing.F) {
	s := testSigner(f, Ed25519)
	pub := s.Public()
	orig := join(buildFile(f, s, 12, 5))
	f.Add(uint16(0), []byte{})
	f.Add(uint16(100), []byte("x"))
	f.Add(uint16(400), []byte("\n"))
	f.Add(uint16(7), []byte(`"seq":9`))
	f.Fuzz(func(t *testing.T, at uint16, repl []byte) {
		pos := int(at) % (len(orig) + 1)
		end := min(len(orig), pos+len(repl))
		data := append(append(append([]byte{}, orig[:pos]...), repl...), orig[end:]...)
		_, err := Verify(bytes.NewReader(data), VerifyOptions{Key: &pub})
		if bytes.Equal(data, orig) {
			if err != nil {
				t.Fatalf("intact file rejected: %v", err)
			}
			return
		}
		var p *Problem
		if !errors.As(err, &p) {
			t.Fatalf("altered file accepted (err %v)", err)
		}
		if lines := bytes.Count(data, []byte("\n")) + 1; p.Line < 1 || p.Line > lines {
			t.Fatalf("problem at line %d of %d", p.Line, lines)
		}
	})
}

// FuzzParseSegmentName: a name is a segment of path only in the one
// spelling SegmentName gives it (so that no other file in the directory is
// ever taken for, or deleted as, a segment), with a first seq of at least 1.
func FuzzParseSegmentName(f *testing.F) {
	const path = "/var/lib/timegate/audit.log"
	f.Add(SegmentName(path, 1)[len("/var/lib/timegate/"):])
	f.Add("audit.log-000000000001")
	f.Add("audit.log-1234567890123456")
	f.Add("audit.log.shipped")
	f.Add("audit.log-00000000000x")
	f.Add("audit.log-18446744073709551616")
	f.Fuzz(func(t *testing.T, name string) {
		first, ok := ParseSegmentName(path, name)
		if !ok {
			return
		}
		if first == 0 {
			t.Fatalf("%q: segment with first seq 0", name)
		}
		if want := filepath.Base(SegmentName(path, first)); filepath.Base(name) != want {
			t.Fatalf("%q parsed as %d, whose name is %q", name, first, want)
		}
	})
}
