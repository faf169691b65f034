package audit

import (
	"bytes"
	"testing"
)

// BenchmarkCheckpoint is the cost of signing one checkpoint.
func BenchmarkCheckpoint(b *testing.B) {
	for _, alg := range []Alg{MLDSA65, Ed25519} {
		b.Run(string(alg), func(b *testing.B) {
			s := testSigner(b, alg)
			var c Chain
			c.Append(Event{Type: TypeStart, Outcome: OutcomeOK}, t0)
			for b.Loop() {
				if _, err := c.Checkpoint(s, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppend is the pure cost of sealing one record (encode + hash).
func BenchmarkAppend(b *testing.B) {
	var c Chain
	e := Event{Type: TypeConfigReload, Outcome: OutcomeAccepted, Details: map[string]string{"config": "/etc/timegate/timegate.conf"}}
	b.ReportAllocs()
	for b.Loop() {
		c.Append(e, t0)
	}
}

// BenchmarkVerify is the verifier's throughput over a file with a
// checkpoint every 1000 records (the default).
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []Alg{MLDSA65, Ed25519} {
		b.Run(string(alg), func(b *testing.B) {
			s := testSigner(b, alg)
			pub := s.Public()
			data := join(buildFile(b, s, 10000, 1000))
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Verify(bytes.NewReader(data), VerifyOptions{Key: &pub}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(10010*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
