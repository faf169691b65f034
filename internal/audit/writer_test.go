package audit

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"timegate/audit"
)

func testKey(t testing.TB, alg audit.Alg) *audit.Signer {
	t.Helper()
	s, created, err := LoadOrCreateKey(filepath.Join(t.TempDir(), KeyFileName), alg, rand.Reader)
	if err != nil || !created {
		t.Fatal(err)
	}
	return s
}

func ev(i int) audit.Event {
	return audit.Event{Type: audit.TypeConfigReload, Outcome: audit.OutcomeAccepted, Details: map[string]string{"i": fmt.Sprint(i)}}
}

var (
	startEv = audit.Event{Type: audit.TypeStart, Outcome: audit.OutcomeOK}
	stopEv  = audit.Event{Type: audit.TypeStop, Outcome: audit.OutcomeOK}
)

func verifyFile(t testing.TB, path string, s *audit.Signer) audit.Summary {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pub := s.Public()
	sum, err := audit.Verify(f, audit.VerifyOptions{Key: &pub})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return sum
}

func TestWriterResumeAndCheckpoints(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg := WriterConfig{Path: path, Signer: s, CheckpointRecords: 7}
	for run := range 3 {
		w, err := OpenWriter(cfg, startEv)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			w.Record(ev(run*100 + i))
			if i%5 == 0 {
				time.Sleep(time.Millisecond) // several batches
			}
		}
		if err := w.Close(stopEv); err != nil {
			t.Fatal(err)
		}
	}
	sum := verifyFile(t, path, s)
	// Per run: start + 20 + stop, plus checkpoints (start, each 7, stop).
	if sum.FirstSeq != 1 || sum.Records < 66 || sum.Unsigned != 0 || sum.Checkpoints < 3*4 {
		t.Fatalf("%+v", sum)
	}
}

// TestWriterTornLine: a crash inside a write leaves a partial last line;
// the next start cuts it, records the cut, and the file verifies.
func TestWriterTornLine(t *testing.T) {
	s := testKey(t, audit.MLDSA65)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	w.Record(ev(1))
	w.Close(stopEv)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"v":1,"seq":99,"ti`)
	f.Close()
	w, err = OpenWriter(WriterConfig{Path: path, Signer: s}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	w.Close(stopEv)
	verifyFile(t, path, s)
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte(`"type":"audit.recovered"`)) || !bytes.Contains(data, []byte(`"torn_bytes":"19"`)) {
		t.Fatalf("no recovery record:\n%s", data)
	}
}

func TestWriterRefusesDamagedLastRecord(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(path, []byte("not a record\n"), 0o600)
	_, err := OpenWriter(WriterConfig{Path: path, Signer: s}, startEv)
	if err == nil || !strings.Contains(err.Error(), "cannot be resumed") {
		t.Fatalf("err %v", err)
	}
}

// TestWriterNeverBlocks: a full queue drops and counts, then records the
// count.
func TestWriterNeverBlocks(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s, QueueLen: 4}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 10000 {
		w.Record(ev(i))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Record took %v for 10000 events", d)
	}
	w.Close(stopEv)
	w.Record(ev(-1)) // after close: counted, no panic
	verifyFile(t, path, s)
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte(`"type":"audit.dropped"`)) {
		t.Fatal("no audit.dropped record")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFileName)
	s1, created, err := LoadOrCreateKey(path, audit.MLDSA65, rand.Reader)
	if err != nil || !created {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	s2, created, err := LoadOrCreateKey(path, audit.MLDSA65, rand.Reader)
	if err != nil || created || s2.Public().Fingerprint() != s1.Public().Fingerprint() {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(path + ".pub")
	if p, err := audit.ParsePublicKey(pub); err != nil || p.Fingerprint() != s1.Public().Fingerprint() {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path, audit.Ed25519, rand.Reader); err == nil {
		t.Fatal("algorithm switch accepted")
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreateKey(path, audit.MLDSA65, rand.Reader); err == nil {
		t.Fatal("world-readable key accepted")
	}
}

// BenchmarkWriter measures records/s through Record → file, with the
// default group-commit fsync and without fsync; the per-record fsync case
// waits for each record before offering the next (worst case: one fsync
// per record).
func BenchmarkWriter(b *testing.B) {
	for _, c := range []struct {
		name      string
		noSync    bool
		perRecord bool
	}{{"fsync-per-record", false, true}, {"group-commit", false, false}, {"nosync", true, false}} {
		b.Run(c.name, func(b *testing.B) {
			s := testKey(b, audit.MLDSA65)
			path := filepath.Join(b.TempDir(), "audit.log")
			w, err := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: c.noSync, QueueLen: 65536}, startEv)
			if err != nil {
				b.Fatal(err)
			}
			e := ev(1)
			b.ResetTimer()
			for range b.N {
				if c.perRecord {
					seq := w.Seq()
					w.Record(e)
					for w.Seq() == seq {
						<-w.Notify()
					}
					continue
				}
				for w.Dropped() > 0 || len(w.queue) == cap(w.queue) {
					time.Sleep(10 * time.Microsecond)
				}
				w.Record(e)
			}
			w.Close(stopEv)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
