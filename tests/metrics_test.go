package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"timegate/ntp"
	"timegate/tests/harness"
)

// Issue 8: the real daemon with `metrics ADDR:PORT` serves Prometheus metrics
// whose counters follow the traffic it gets (plain NTP, a hostile mode 6
// query, one NTS-KE), and /readyz says 503 while it serves no synchronised
// time (no upstream here, no `local`).
func TestMetricsEndpoint(t *testing.T) {
	bins := build.Binaries(t)
	dir := t.TempDir()
	cert, key := harness.WriteCert(t, dir)
	tcp := harness.FreeTCPPorts(t, 2)
	ntpPort, kePort, metricsPort := harness.FreeUDPPort(t), tcp[0], tcp[1]
	conf := fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nratelimit off\nbindcmdaddress /\n"+
		"ntsservercert %s\nntsserverkey %s\nntsdumpdir %s\nmetrics 127.0.0.1:%d\n", ntpPort, kePort, cert, key, dir, metricsPort)
	harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{
		Args: []string{"-state", dir}, UDPPorts: []int{ntpPort}, TCPPorts: []int{kePort, metricsPort},
	})
	base := "http://127.0.0.1:" + strconv.Itoa(metricsPort)

	before := scrapeMetrics(t, base)
	const requests = 5
	sendNTP(t, ntpPort, requests)
	// The KE succeeds; the NTS query after it gets stratum 16, which gatectl
	// reports as an error: only the handshake matters here.
	harness.RunGatectl(t, bins.Gatectl, "query", "-nts", "-timeout", "3s", "-ca", cert, net.JoinHostPort("localhost", strconv.Itoa(kePort)))

	// Counters move just after the reply leaves: wait for all of them.
	var after map[string]*dto.MetricFamily
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		after = scrapeMetrics(t, base)
		lag := unmoved(before, after, requests)
		return len(lag) == 0, strings.Join(lag, "; ")
	})
	checkUnsynchronisedMetrics(t, after)
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "unsynchronised") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if code, _ := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
}

// unmoved lists the counters that have not moved as far as the traffic
// sendNTP and one NTS query make them.
func unmoved(before, after map[string]*dto.MetricFamily, requests float64) []string {
	var lag []string
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"timegate_ntp_requests_total", []string{"mode", "client"}, requests + 1},
		{"timegate_ntp_requests_total", []string{"mode", "control"}, 1},
		{"timegate_ntp_verdicts_total", []string{"verdict", "reply"}, requests + 1},
		{"timegate_ntp_dropped_total", []string{"reason", "mode"}, 1},
		{"timegate_ntp_answered_total", []string{"auth", "none"}, requests},
		{"timegate_ntp_answered_total", []string{"auth", "nts"}, 1},
		{"timegate_ntp_datagrams_received_total", nil, requests + 2},
		{"timegate_nts_ke_connections_accepted_total", nil, 1},
		{"timegate_nts_ke_handshakes_total", nil, 1},
		{"timegate_nts_ke_handshake_duration_seconds", nil, 1},
	} {
		if got := sample(after, c.name, c.labels...) - sample(before, c.name, c.labels...); got < c.min {
			lag = append(lag, fmt.Sprintf("%s%v moved by %v, want at least %v", c.name, c.labels, got, c.min))
		}
	}
	return lag
}

func checkUnsynchronisedMetrics(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"timegate_stratum", nil, 16},
		{"timegate_synchronised", nil, 0},
		{"timegate_sync_state", []string{"state", "unsynchronised"}, 1},
		{"timegate_nts_keys", []string{"role", "sealing"}, 1},
	} {
		if got := sample(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if exp := sample(fams, "timegate_nts_certificate_expiry_timestamp_seconds"); exp < float64(time.Now().Unix()) {
		t.Errorf("certificate expiry %v is not in the future", exp)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
}

// sendNTP sends n client requests and one mode 6 query, and waits for the n
// replies.
func sendNTP(t *testing.T, port, n int) {
	t.Helper()
	c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	control := ntp.ClientRequest(nil, 4, 3, 1)
	control[0] = 4<<3 | 6
	if _, err := c.Write(control); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	for i := range n {
		if _, err := c.Write(ntp.ClientRequest(nil, 4, 3, ntp.Time64(i+2))); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
	}
}

func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// sample returns the value of the series of family name whose labels
// include the given pairs (a histogram's count); 0 when there is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
