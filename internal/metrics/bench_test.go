package metrics

import (
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkScrape is one GET /metrics with the fake gateway: the Go and
// process collectors included, text encoding, no network.
func BenchmarkScrape(b *testing.B) {
	h := NewHandler(syncedReporter(), testRaw(), nil)
	req := httptest.NewRequest("GET", "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkCollect is the timegate collector alone, gathered.
func BenchmarkCollect(b *testing.B) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{rep: syncedReporter(), raw: testRaw(), d: newDescs()})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
