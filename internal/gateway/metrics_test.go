package gateway

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"timegate/internal/config"
)

// TestMetricsEndpoint: with `metrics` set the gateway serves its own report
// over HTTP, and says it is not ready while it serves no synchronised time;
// the listener closes when Run ends.
func TestMetricsEndpoint(t *testing.T) {
	cfg := config.Defaults()
	cfg.Port, cfg.NTSPort, cfg.ControlOff = 0, 0, true
	cfg.Metrics = netip.MustParseAddrPort("127.0.0.1:0")
	g, err := New(cfg, Options{StateDir: t.TempDir(), Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	base := "http://" + g.metricsLn.Addr().String()
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "\ntimegate_stratum 16\n") || !strings.Contains(body, `timegate_sync_state{state="unsynchronised"} 1`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	if strings.Contains(body, "timegate_nts_ke_") {
		t.Error("NTS-KE metrics with NTS-KE off")
	}
	if strings.Contains(body, "timegate_audit_") || g.Status().Audit != nil {
		t.Error("audit trail status without auditlog")
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.HasPrefix(body, "unsynchronised: ") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("metrics still served after Run returned")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
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
