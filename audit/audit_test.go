package audit

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 14, 0, 0, 123456789, time.UTC)

// seededReader is a deterministic io.Reader for key generation in tests.
type seededReader struct{ r *rand.ChaCha8 }

func (s seededReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func testSigner(t testing.TB, alg Alg) *Signer {
	t.Helper()
	s, err := GenerateSigner(alg, seededReader{rand.NewChaCha8([32]byte{1})})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// buildFile writes n events with a checkpoint every k records and one at the end.
func buildFile(t testing.TB, s *Signer, n, k int) [][]byte {
	t.Helper()
	var c Chain
	var lines [][]byte
	for i := range n {
		lines = append(lines, c.Append(Event{Type: TypeConfigReload, Outcome: OutcomeAccepted,
			Subject: Subject{User: fmt.Sprint("u", i)}, Details: map[string]string{"i": fmt.Sprint(i)}}, t0.Add(time.Duration(i)*time.Second)))
		if (i+1)%k == 0 || i == n-1 {
			cp, err := c.Checkpoint(s, t0.Add(time.Duration(i)*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, cp)
		}
	}
	return lines
}

func join(lines [][]byte) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestRecordRoundTrip(t *testing.T) {
	var c Chain
	line := c.Append(Event{Type: TypeAccessDenied, Outcome: OutcomeDenied,
		Subject: Subject{Prefix: "192.0.2.0/24"}, Details: map[string]string{"count": "12", "b": "<&>"}}, t0)
	want := `{"v":1,"seq":1,"time":"2026-12-04T14:00:00.123456789Z","type":"access.denied.episode","outcome":"denied","subject":{"prefix":"192.0.2.0/24"},"details":{"b":"\u003c\u0026\u003e","count":"12"},"prev":"` + strings.Repeat("0", 64) + `"}`
	if string(line) != want {
		t.Fatalf("got  %s\nwant %s", line, want)
	}
	r, err := Parse(line)
	if err != nil || !bytes.Equal(r.Encode(), line) {
		t.Fatalf("parse: %v", err)
	}
}

func TestParseRejectsNonCanonical(t *testing.T) {
	var c Chain
	line := string(c.Append(Event{Type: TypeStart, Outcome: OutcomeOK}, t0))
	for name, bad := range map[string]string{
		"space":     strings.Replace(line, `"seq":1`, `"seq": 1`, 1),
		"order":     strings.Replace(line, `{"v":1,"seq":1`, `{"seq":1,"v":1`, 1),
		"unknown":   strings.Replace(line, `{"v":1`, `{"x":0,"v":1`, 1),
		"dup":       strings.Replace(line, `"seq":1`, `"seq":1,"seq":1`, 1),
		"seq0":      strings.Replace(line, `"seq":1`, `"seq":0`, 1),
		"time":      strings.Replace(line, `.123456789Z`, `.1234567Z`, 1),
		"prev":      strings.Replace(line, `"prev":"0`, `"prev":"A`, 1),
		"trailing":  line + " ",
		"two":       line + line,
		"version":   strings.Replace(line, `"v":1`, `"v":2`, 1),
		"emptytype": strings.Replace(line, `"gateway.start"`, `""`, 1),
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%s: accepted %s", name, bad)
		}
	}
}

func TestSanitizeBounds(t *testing.T) {
	var c Chain
	d := map[string]string{}
	for i := range 100 {
		d[fmt.Sprint("k", i)] = strings.Repeat("é", 2000) + "\xff"
	}
	line := c.Append(Event{Type: TypeStart, Outcome: OutcomeOK, Details: d, Subject: Subject{User: strings.Repeat("<", 600)}}, t0)
	if len(line) > MaxEventLen || !strings.Contains(string(line), `"truncated":"details dropped`) {
		t.Fatalf("line of %d bytes", len(line))
	}
	if _, err := Parse(line); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyGood(t *testing.T) {
	for _, alg := range []Alg{MLDSA65, Ed25519} {
		s := testSigner(t, alg)
		pub := s.Public()
		data := join(buildFile(t, s, 25, 10))
		sum, err := Verify(bytes.NewReader(data), VerifyOptions{Key: &pub})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if sum.Records != 28 || sum.Checkpoints != 3 || sum.LastSeq != 28 || sum.Unsigned != 0 {
			t.Fatalf("%s: %+v", alg, sum)
		}
	}
}

// TestTamper is the verifier's contract: each kind of tampering is named
// at the exact record.
func TestTamper(t *testing.T) {
	s := testSigner(t, MLDSA65)
	pub := s.Public()
	other := testSignerSeed(t, 2)
	lines := buildFile(t, s, 25, 10) // lines 1..10 records, 11 checkpoint, 12..21, 22 cp, 23..27, 28 cp
	mod := func(f func(l [][]byte) [][]byte) []byte {
		cp := make([][]byte, len(lines))
		for i := range lines {
			cp[i] = bytes.Clone(lines[i])
		}
		return join(f(cp))
	}
	forged := func() []byte {
		// A checkpoint re-signed with another key, and one re-encoded
		// with a stolen signature from elsewhere.
		var c Chain
		for _, l := range lines[:21] {
			c.advance(l)
		}
		cp, _ := c.Checkpoint(other, t0)
		return cp
	}()
	cases := []struct {
		name string
		data []byte
		line int
		seq  uint64
		want string
	}{
		{"edit", mod(func(l [][]byte) [][]byte {
			l[4] = bytes.Replace(l[4], []byte(`"u4"`), []byte(`"u9"`), 1)
			return l
		}), 5, 5, "altered"},
		{"edit-noncanonical", mod(func(l [][]byte) [][]byte {
			l[4] = bytes.Replace(l[4], []byte(`"seq":5`), []byte(`"seq": 5`), 1)
			return l
		}), 5, 0, "not a valid record"},
		{"delete", mod(func(l [][]byte) [][]byte { return append(l[:4], l[5:]...) }), 5, 6, "seq 6 follows seq 4"},
		{"delete-first", mod(func(l [][]byte) [][]byte { return l[1:] }), 1, 2, "does not start the chain"},
		{"reorder", mod(func(l [][]byte) [][]byte { l[4], l[5] = l[5], l[4]; return l }), 5, 6, "seq 6 follows seq 4"},
		{"truncate-mid-line", mod(func(l [][]byte) [][]byte { return l })[:len(join(lines[:15]))+20], 16, 0, "incomplete last line"},
		{"truncate-past-checkpoint", mod(func(l [][]byte) [][]byte { return l[:26] }), 23, 23, "not covered by a signed checkpoint"},
		{"forged-checkpoint", mod(func(l [][]byte) [][]byte {
			l[21] = bytes.Replace(l[21], []byte(`"sig":"`), []byte(`"sig":"AAAA`), 1)
			return l
		}), 22, 22, "forged checkpoint"},
		{"other-key-checkpoint", mod(func(l [][]byte) [][]byte { l[21] = forged; return l }), 22, 22, "another key"},
		{"edit-last-before-checkpoint", mod(func(l [][]byte) [][]byte {
			l[20] = bytes.Replace(l[20], []byte(`accepted`), []byte(`rejected`), 1)
			return l
		}), 21, 21, "altered"},
	}
	for _, c := range cases {
		_, err := Verify(bytes.NewReader(c.data), VerifyOptions{Key: &pub})
		var p *Problem
		if !errors.As(err, &p) {
			t.Errorf("%s: err %v, want a Problem", c.name, err)
			continue
		}
		if p.Line != c.line || p.Seq != c.seq || !strings.Contains(p.Reason, c.want) {
			t.Errorf("%s: %v; want line %d seq %d %q", c.name, p, c.line, c.seq, c.want)
		}
	}
}

func testSignerSeed(t testing.TB, b byte) *Signer {
	s, err := GenerateSigner(MLDSA65, seededReader{rand.NewChaCha8([32]byte{b})})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyLive(t *testing.T) {
	s := testSigner(t, Ed25519)
	pub := s.Public()
	data := join(buildFile(t, s, 5, 10))
	var c Chain
	for _, l := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		c.advance(l)
	}
	data = append(data, c.Append(Event{Type: TypeStop, Outcome: OutcomeOK}, t0)...)
	data = append(data, "\n{\"v\":1,"...)
	if _, err := Verify(bytes.NewReader(data), VerifyOptions{Key: &pub, Live: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(bytes.NewReader(data), VerifyOptions{Key: &pub}); err == nil {
		t.Fatal("strict verify accepted a torn tail")
	}
}

func TestKeyText(t *testing.T) {
	for _, alg := range []Alg{MLDSA65, Ed25519} {
		s := testSigner(t, alg)
		s2, err := ParseSigner(s.MarshalText())
		if err != nil || !bytes.Equal(s2.Public().Bytes, s.Public().Bytes) {
			t.Fatalf("%s: %v", alg, err)
		}
		p, err := ParsePublicKey([]byte(s.Public().Text()))
		if err != nil || p.Fingerprint() != s.Public().Fingerprint() {
			t.Fatalf("%s: %v", alg, err)
		}
		msg := []byte("m")
		sig, _ := s.Sign(msg)
		if !p.Verify(msg, sig) || p.Verify([]byte("n"), sig) {
			t.Fatalf("%s: verify", alg)
		}
	}
	for _, bad := range []string{"", "timegate-audit-key v1 rsa AAAA", "timegate-audit-key v2 ed25519 AAAA", "timegate-audit-key v1 ed25519 AAAA"} {
		if _, err := ParseSigner([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestSyslogMessage(t *testing.T) {
	var c Chain
	line := c.Append(Event{Type: TypeConfigReload, Outcome: OutcomeRejected}, t0)
	r, _ := Parse(line)
	msg := SyslogMessage(nil, &r, line, "gw 1")
	want := `<108>1 2026-12-04T14:00:00.123456Z gw1 timegate - config.reload [timegate-audit@32473 seq="1"] ` + string(line)
	if string(msg) != want {
		t.Fatalf("got  %s\nwant %s", msg, want)
	}
	if got := string(OctetCounted(nil, []byte("abc"))); got != "3 abc" {
		t.Fatal(got)
	}
}

// TestResume: a chain resumed from the last line continues it.
func TestResume(t *testing.T) {
	s := testSigner(t, Ed25519)
	lines := buildFile(t, s, 3, 10)
	c, _, err := Resume(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	lines = append(lines, c.Append(Event{Type: TypeStart, Outcome: OutcomeOK}, t0))
	cp, _ := c.Checkpoint(s, t0)
	lines = append(lines, cp)
	pub := s.Public()
	if _, err := Verify(bytes.NewReader(join(lines)), VerifyOptions{Key: &pub}); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyDedup: a collector's copy, with a re-sent stretch, verifies
// with Dedup; a re-sent record that differs is named; without Dedup the
// repeat is a reordering.
func TestVerifyDedup(t *testing.T) {
	s := testSigner(t, Ed25519)
	pub := s.Public()
	lines := buildFile(t, s, 25, 10)
	resent := append(append(append([][]byte{}, lines[:15]...), lines[9:15]...), lines[15:]...)
	sum, err := Verify(bytes.NewReader(join(resent)), VerifyOptions{Key: &pub, Dedup: true})
	if err != nil || sum.Duplicates != 6 || sum.Records != len(lines) {
		t.Fatalf("%+v %v", sum, err)
	}
	if _, err := Verify(bytes.NewReader(join(resent)), VerifyOptions{Key: &pub}); err == nil {
		t.Fatal("repeats accepted without Dedup")
	}
	bad := append([][]byte{}, resent...)
	bad[17] = bytes.Replace(bytes.Clone(bad[17]), []byte("accepted"), []byte("rejected"), 1)
	_, err = Verify(bytes.NewReader(join(bad)), VerifyOptions{Key: &pub, Dedup: true})
	var p *Problem
	if !errors.As(err, &p) || p.Line != 18 || !strings.Contains(p.Reason, "differs from the first") {
		t.Fatalf("%v", err)
	}
}

func TestControlEvents(t *testing.T) {
	var c Chain
	for _, e := range []Event{ControlCommand("uid 0", "rotate", nil), ControlCommand("uid 0", "reload", errors.New("bad")),
		ControlRefused("uid 1000", "rotate", "not authorised")} {
		if _, err := Parse(c.Append(e, t0)); err != nil {
			t.Fatal(err)
		}
	}
	if e := ControlCommand("u", "x", errors.New("e")); e.Outcome != OutcomeFailed || e.Details["error"] != "e" {
		t.Fatal(e)
	}
}
