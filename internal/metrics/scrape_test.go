package metrics

import (
	"math"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"
)

// TestScrape reads every metric family the collector makes from a fake
// gateway over HTTP, parsed by the Prometheus text parser: names, types,
// labels and values.
func TestScrape(t *testing.T) {
	fams := scrape(t, NewHandler(syncedReporter(), testRaw(), zaptest.NewLogger(t)))
	counter, gauge, histo := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	for _, tc := range []struct {
		name   string
		typ    dto.MetricType
		labels []string
		want   float64
	}{
		{"timegate_build_info", gauge, []string{"version", "v1.2.3 abc go1.27.3"}, 1},
		{"timegate_synchronised", gauge, nil, 1},
		{"timegate_sync_state", gauge, []string{"state", "synchronised"}, 1},
		{"timegate_sync_state", gauge, []string{"state", "unsynchronised"}, 0},
		{"timegate_stratum", gauge, nil, 2},
		{"timegate_root_distance_seconds", gauge, nil, 0.013},
		{"timegate_root_delay_seconds", gauge, nil, 0.02},
		{"timegate_root_dispersion_seconds", gauge, nil, 0.003},
		{"timegate_clock_offset_seconds", gauge, nil, -0.0005},
		{"timegate_clock_frequency_adjustment_ratio", gauge, nil, 12.5e-6},
		{"timegate_estimate_age_seconds", gauge, nil, 30},
		{"timegate_truechimers", gauge, nil, 3},
		{"timegate_config_loaded_timestamp_seconds", gauge, nil, float64(testNow.Unix())},
		{"timegate_config_warnings", gauge, nil, 1},

		{"timegate_ntp_datagrams_received_total", counter, nil, 100},
		{"timegate_ntp_socket_drops_total", counter, nil, 6},
		{"timegate_ntp_requests_total", counter, []string{"mode", "client"}, 90},
		{"timegate_ntp_requests_total", counter, []string{"mode", "control"}, 7},
		{"timegate_ntp_requests_total", counter, []string{"mode", "private"}, 0},
		{"timegate_ntp_verdicts_total", counter, []string{"verdict", "reply"}, 80},
		{"timegate_ntp_verdicts_total", counter, []string{"verdict", "kod"}, 5},
		{"timegate_ntp_verdicts_total", counter, []string{"verdict", "drop"}, 10},
		{"timegate_ntp_verdicts_total", counter, []string{"verdict", "nts-nak"}, 2},
		{"timegate_ntp_verdicts_total", counter, []string{"verdict", "send-error"}, 1},
		{"timegate_ntp_answered_total", counter, []string{"auth", "nts"}, 12},
		{"timegate_ntp_kod_total", counter, []string{"code", "RATE"}, 4},
		{"timegate_ntp_dropped_total", counter, []string{"reason", "rate-limited"}, 3},
		{"timegate_ntp_nts_naks_total", counter, nil, 2},
		{"timegate_ntp_ratelimit_leaked_total", counter, nil, 1},
		{"timegate_nts_cookie_open_failures_total", counter, nil, 2},

		{"timegate_nts_ke_connections_accepted_total", counter, nil, 9},
		{"timegate_nts_ke_connections_refused_total", counter, []string{"reason", "source-cap"}, 2},
		{"timegate_nts_ke_sessions_active", gauge, nil, 1},
		{"timegate_nts_ke_handshakes_total", counter, nil, 5},
		{"timegate_nts_ke_failures_total", counter, []string{"reason", "handshake"}, 1},
		{"timegate_nts_ke_handshake_duration_seconds", histo, nil, 5},
		{"timegate_nts_ke_helper_restarts_total", counter, nil, 2},

		{"timegate_ratelimit_entries", gauge, []string{"table", "ntp"}, 12},
		{"timegate_ratelimit_capacity", gauge, []string{"table", "nts-ke"}, 4096},
		{"timegate_ratelimit_evictions_total", counter, []string{"table", "ntp"}, 9},

		{"timegate_source_state", gauge, []string{"source", "a.example", "address", "192.0.2.1", "state", "selected"}, 1},
		{"timegate_source_state", gauge, []string{"source", "a.example", "address", "192.0.2.1", "state", "falseticker"}, 0},
		{"timegate_source_state", gauge, []string{"source", "b.example", "address", "2001:db8::1", "state", "falseticker"}, 1},
		{"timegate_source_state", gauge, []string{"source", "pool.example", "address", "", "state", "resolving"}, 1},
		{"timegate_source_state", gauge, []string{"source", "nts-pool.example", "address", "192.0.2.40:4460", "state", "ke-failing"}, 1},
		{"timegate_source_state", gauge, []string{"source", "nts-pool.example", "address", "192.0.2.41:4460", "state", "ke-failing"}, 1},
		{"timegate_source_offset_seconds", gauge, []string{"source", "a.example"}, 0.0012},
		{"timegate_source_offset_seconds", gauge, []string{"source", "b.example"}, -0.5},
		{"timegate_source_delay_seconds", gauge, []string{"source", "a.example"}, 0.025},
		{"timegate_source_jitter_seconds", gauge, []string{"source", "a.example"}, 0.0003},
		{"timegate_source_root_distance_seconds", gauge, []string{"source", "a.example"}, 0.013},
		{"timegate_source_reach", gauge, []string{"source", "b.example"}, 17},
		{"timegate_source_stratum", gauge, []string{"source", "a.example"}, 1},
		{"timegate_source_poll_interval_seconds", gauge, []string{"source", "b.example"}, 1024},
		{"timegate_source_authenticated", gauge, []string{"source", "a.example"}, 1},
		{"timegate_source_nts_cookies", gauge, []string{"source", "a.example"}, 7},
		{"timegate_source_requests_sent_total", counter, []string{"source", "a.example"}, 40},
		{"timegate_source_responses_received_total", counter, []string{"source", "a.example"}, 39},

		{"timegate_nts_keys", gauge, []string{"role", "opening"}, 1},
		{"timegate_nts_sealing_key_age_seconds", gauge, nil, 3600},
		{"timegate_nts_oldest_key_age_seconds", gauge, nil, 90000},
		{"timegate_nts_key_next_rotation_timestamp_seconds", gauge, nil, float64(testRotate.Unix())},
		{"timegate_nts_certificate_expiry_timestamp_seconds", gauge, nil, float64(testExpiry.Unix())},

		{"timegate_audit_last_seq", gauge, nil, 1234},
		{"timegate_audit_dropped_events_total", counter, nil, 7},
		{"timegate_audit_write_failing", gauge, nil, 1},
		{"timegate_audit_rotate_failing", gauge, nil, 1},
		{"timegate_audit_segments", gauge, nil, 3},
		{"timegate_audit_disk_bytes", gauge, nil, 13107200},
		{"timegate_audit_ship_connected", gauge, nil, 0},
		{"timegate_audit_ship_acked_seq", gauge, nil, 1230},
		{"timegate_audit_ship_backlog_bytes", gauge, nil, 70 << 20},
		{"timegate_audit_ship_backlog_limit_bytes", gauge, nil, 64 << 20},
		{"timegate_audit_ship_alarm", gauge, nil, 1},
		{"timegate_audit_ship_skipped_records_total", counter, nil, 12},
		{"timegate_audit_ship_reconnects_total", counter, nil, 4},
		{"timegate_audit_ship_since_timestamp_seconds", gauge, nil, float64(testNow.Add(-time.Hour).Unix())},
	} {
		f := fams[tc.name]
		if f == nil {
			t.Errorf("%s: missing", tc.name)
			continue
		}
		if f.GetType() != tc.typ {
			t.Errorf("%s: type %v, want %v", tc.name, f.GetType(), tc.typ)
		}
		if v, ok := value(fams, tc.name, tc.labels...); !ok || v != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, v, ok, tc.want)
		}
	}
	checkSourceSeries(t, fams)
	checkHistogram(t, fams["timegate_nts_ke_handshake_duration_seconds"])
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", "go_build_info"} {
		if fams[name] == nil {
			t.Errorf("%s: the Go and process collectors are missing", name)
		}
	}
}

// checkSourceSeries: one state series per source and state (the duplicate
// unresolved pool member once), and no offset for a source without samples.
func checkSourceSeries(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	// a.example, b.example, pool.example (its two unresolved members
	// share labels) and the two NTS pool members known by their KE
	// servers.
	if n, want := len(fams["timegate_source_state"].GetMetric()), 5*len(sourceStates()); n != want {
		t.Errorf("%d source_state series, want %d", n, want)
	}
	if _, ok := value(fams, "timegate_source_offset_seconds", "source", "pool.example"); ok {
		t.Error("offset of a source without samples")
	}
}

func checkHistogram(t *testing.T, f *dto.MetricFamily) {
	t.Helper()
	h := f.GetMetric()[0].GetHistogram()
	// The text format carries the +Inf bucket explicitly.
	if h.GetSampleSum() != 7.25 || h.GetSampleCount() != 5 || len(h.GetBucket()) != 13 {
		t.Fatalf("histogram %v", h)
	}
	if b := h.GetBucket()[12]; !math.IsInf(b.GetUpperBound(), 1) || b.GetCumulativeCount() != 5 {
		t.Errorf("last bucket le=%v count %d, want +Inf and 5", b.GetUpperBound(), b.GetCumulativeCount())
	}
	if b := h.GetBucket()[2]; b.GetUpperBound() != 0.005 || b.GetCumulativeCount() != 3 {
		t.Errorf("bucket le=%v count %d, want le=0.005 count 3", b.GetUpperBound(), b.GetCumulativeCount())
	}
}

// TestScrapeWithoutNTS: with NTS-KE off, no NTS-KE, key or certificate
// metrics appear, rather than zeros that would look like a dead listener.
func TestScrapeWithoutNTS(t *testing.T) {
	rep := syncedReporter()
	rep.nts = false
	fams := scrape(t, NewHandler(rep, Raw{NTP: testRaw().NTP}, zaptest.NewLogger(t)))
	for _, name := range []string{
		"timegate_nts_ke_connections_accepted_total", "timegate_nts_ke_handshake_duration_seconds",
		"timegate_nts_keys", "timegate_nts_certificate_expiry_timestamp_seconds",
	} {
		if fams[name] != nil {
			t.Errorf("%s present with NTS-KE off", name)
		}
	}
	if _, ok := value(fams, "timegate_ratelimit_entries", "table", "nts-ke"); ok {
		t.Error("NTS-KE rate table with NTS-KE off")
	}
}

// TestScrapeAudit: the audit series exist only with auditlog, and the
// shipping ones only with auditship, rather than zeros that would read as
// an empty log or a collector down.
func TestScrapeAudit(t *testing.T) {
	rep := syncedReporter()
	rep.status.Audit.Shipping = nil
	rep.status.Audit.WriteFailing = false
	fams := scrape(t, NewHandler(rep, testRaw(), zaptest.NewLogger(t)))
	if v, ok := value(fams, "timegate_audit_write_failing"); !ok || v != 0 {
		t.Errorf("timegate_audit_write_failing = %v (found %v), want 0", v, ok)
	}
	if v, ok := value(fams, "timegate_audit_last_seq"); !ok || v != 1234 {
		t.Errorf("timegate_audit_last_seq = %v (found %v) without auditship", v, ok)
	}
	for name := range fams {
		if strings.HasPrefix(name, "timegate_audit_ship_") {
			t.Errorf("%s without auditship", name)
		}
	}
	rep.status.Audit = nil
	fams = scrape(t, NewHandler(rep, testRaw(), zaptest.NewLogger(t)))
	for name := range fams {
		if strings.HasPrefix(name, "timegate_audit_") {
			t.Errorf("%s without auditlog", name)
		}
	}
}
