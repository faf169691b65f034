package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap/zaptest"

	"timegate/internal/kelisten"
	"timegate/internal/report"
	"timegate/internal/udpserve"
)

var (
	testNow     = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	testExpiry  = testNow.Add(90 * 24 * time.Hour)
	testRotate  = testNow.Add(6 * time.Hour)
	testRawNTP  = udpserve.Snapshot{ByMode: [8]uint64{3: 90, 6: 7}}
	testLatency = kelisten.Histogram{
		Bounds:     [12]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5},
		Cumulative: [12]uint64{0, 1, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4},
		Count:      5, Sum: 7.25,
	}
)

// fakeReporter is a gateway with fixed state; sourcesErr makes Sources fail
// as a busy engine loop would.
type fakeReporter struct {
	status     report.Status
	sourcesErr error
	nts        bool
}

func (f *fakeReporter) Status() report.Status { return f.status }

func (f *fakeReporter) Sources(context.Context) ([]report.Source, error) {
	if f.sourcesErr != nil {
		return nil, f.sourcesErr
	}
	return []report.Source{
		{Name: "a.example", Address: "192.0.2.1", State: report.SourceSelected, Auth: "nts", Cookies: 7, Stratum: 1, Poll: 6,
			Reach: 255, Offset: 0.0012, Delay: 0.025, Jitter: 0.0003, RootDistance: 0.013, Samples: 8, Sent: 40, Received: 39, Authenticated: true},
		{Name: "pool.example", State: report.SourceResolving, Auth: "none"},
		{Name: "pool.example", State: report.SourceResolving, Auth: "none"}, // same labels: emitted once
		{Name: "nts-pool.example", KEAddress: "192.0.2.40:4460", State: report.SourceKEFailing, Auth: "nts"},
		{Name: "nts-pool.example", KEAddress: "192.0.2.41:4460", State: report.SourceKEFailing, Auth: "nts"},
		{Name: "b.example", Address: "2001:db8::1", State: report.SourceFalseticker, Auth: "none", Stratum: 2, Poll: 10,
			Reach: 17, Offset: -0.5, Delay: 0.03, Samples: 3, Sent: 5, Received: 3},
	}, nil
}

func (f *fakeReporter) ServerStats() report.ServerStats {
	s := report.ServerStats{NTP: report.NTPStats{
		Received: 100, Replied: 80, NTSNAK: 2, Leaked: 1, SendErrors: 1, KernelDrops: 6,
		Answered: map[string]uint64{"none": 70, "key": 5, "nts": 12},
		Dropped:  map[string]uint64{"mode": 7, "rate-limited": 3, "bad-cookie": 0},
		KoD:      map[string]uint64{"RATE": 4, "DENY": 1, "RSTR": 0},
	}, Rate: report.RateStats{NTP: report.RateTable{Enabled: true, Entries: 12, Capacity: 4096, Evictions: 9}}}
	if f.nts {
		s.KE = report.KEStats{Accepted: 9, Active: 1, Served: 5,
			Refused: map[string]uint64{"total-cap": 0, "source-cap": 2, "rate-limit": 1},
			Failed:  map[string]uint64{"handshake": 1, "timeout": 0}, Helpers: 1, HelperRestarts: 2}
		s.Rate.KE = &report.RateTable{Enabled: true, Entries: 3, Capacity: 4096}
	}
	return s
}

func (f *fakeReporter) Clients(int) report.Clients { return report.Clients{} }

func (f *fakeReporter) KeyRing() report.KeyRing {
	if !f.nts {
		return report.KeyRing{Keys: []report.Key{}}
	}
	return report.KeyRing{NextRotate: testRotate, Keys: []report.Key{
		{ID: "3", Role: report.KeyNext, Age: 60}, {ID: "2", Role: report.KeySealing, Age: 3600}, {ID: "1", Role: report.KeyOpening, Age: 90000},
	}}
}

func (f *fakeReporter) Cert() (report.Cert, bool) {
	return report.Cert{NotAfter: testExpiry, Loaded: testNow}, f.nts
}

func syncedReporter() *fakeReporter {
	return &fakeReporter{nts: true, status: report.Status{
		State: report.StateSynchronised, Synchronised: true, Stratum: 2, RootDelay: 0.02, RootDispersion: 0.003,
		RootDistance: 0.013, Offset: -0.0005, FrequencyPPM: 12.5, SinceEstimate: 30, Truechimers: 3, Sources: 4,
		Version: "v1.2.3 abc go1.27.3", ConfigLoaded: testNow, Warnings: []string{"w"},
		Audit: &report.AuditStatus{File: "/var/lib/timegate/audit.log", LastSeq: 1234, Segments: 3, DiskBytes: 13107200,
			DroppedTotal: 7, WriteFailing: true, LastWriteError: "writing: no space left on device", RotateError: "naming the segment: permission denied",
			Shipping: &report.AuditShipping{Target: "relp://192.0.2.9:2514", AckedSeq: 1230, BacklogBytes: 70 << 20, SpoolMax: 64 << 20,
				Alarm: true, Skipped: 12, Reconnects: 4, LastError: "connection refused", Since: testNow.Add(-time.Hour)}},
	}}
}

func testRaw() Raw {
	return Raw{
		NTP: func() udpserve.Snapshot { return testRawNTP },
		KE:  func() (kelisten.Stats, bool) { return kelisten.Stats{Latency: testLatency}, true },
	}
}

// scrape fetches /metrics through the handler and parses it as Prometheus
// does.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value finds the sample of family name whose labels include want; ok is
// false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want []string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(want); i += 2 {
		if have[want[i]] != want[i+1] {
			return false
		}
	}
	return true
}

func TestLintMetricNames(t *testing.T) {
	c := &collector{rep: syncedReporter(), raw: testRaw(), d: newDescs(), log: zaptest.NewLogger(t)}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestNoDefaultRegistry(t *testing.T) {
	// Two handlers in one process: each has its own registry, so neither
	// panics on a duplicate registration.
	NewHandler(syncedReporter(), testRaw(), nil)
	NewHandler(syncedReporter(), testRaw(), nil)
}

func TestReadyAndHealth(t *testing.T) {
	unsync := &fakeReporter{status: report.Status{State: report.StateUnsynchronised, Reason: "no upstream source is usable yet", Stratum: 16}}
	for _, tc := range []struct {
		rep        report.Reporter
		path       string
		code       int
		bodyPrefix string
	}{
		{syncedReporter(), "/readyz", 200, "synchronised"},
		{unsync, "/readyz", 503, "unsynchronised: no upstream source is usable yet"},
		{&fakeReporter{status: report.Status{State: report.StateHoldover, Synchronised: true}}, "/readyz", 200, "holdover"},
		{&fakeReporter{status: report.Status{State: report.StateLocal, Reason: "serving the local clock"}}, "/readyz", 503, "local: serving"},
		{unsync, "/healthz", 200, "ok"},
		{unsync, "/nothing", 404, ""},
	} {
		rec := httptest.NewRecorder()
		NewHandler(tc.rep, Raw{}, nil).ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.code || !strings.HasPrefix(rec.Body.String(), tc.bodyPrefix) {
			t.Errorf("%s: %d %q, want %d %q", tc.path, rec.Code, rec.Body.String(), tc.code, tc.bodyPrefix)
		}
	}
	rec := httptest.NewRecorder()
	NewHandler(unsync, Raw{}, nil).ServeHTTP(rec, httptest.NewRequest("POST", "/readyz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /readyz: %d", rec.Code)
	}
}

// TestServeLimits: the server binds where told, refuses oversized headers and
// stops when its context ends.
func TestServeLimits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := Listen(ctx, netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, NewHandler(syncedReporter(), Raw{}, nil), zaptest.NewLogger(t)) }()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 2*maxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: %s", resp.Status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := Listen(context.Background(), netip.MustParseAddrPort("192.0.2.1:9123")); err == nil {
		t.Error("bound an address this host does not have")
	}
}

func TestScrapeWithoutSources(t *testing.T) {
	rep := syncedReporter()
	rep.sourcesErr = errors.New("engine busy")
	fams := scrape(t, NewHandler(rep, Raw{}, zaptest.NewLogger(t)))
	if _, ok := fams["timegate_source_state"]; ok {
		t.Error("per-source metrics without sources")
	}
	if v, ok := value(fams, "timegate_stratum"); !ok || v != 2 {
		t.Errorf("the rest of the scrape is missing: stratum %v %v", v, ok)
	}
	if _, ok := fams["timegate_ntp_requests_total"]; ok {
		t.Error("requests by mode without the raw counters")
	}
}
