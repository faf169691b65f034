// Package metrics serves the gateway's Prometheus metrics, with /healthz and
// /readyz, on the listener of the `metrics ADDR:PORT` directive.
//
// Nothing is counted here: a custom collector reads report.Reporter's
// snapshots (the same that `gatectl` shows, so the two never disagree) and
// the few raw counters the reports do not carry, at scrape time only. The
// registry is the handler's own, never the process-wide default.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"timegate/internal/kelisten"
	"timegate/internal/report"
	"timegate/internal/udpserve"
)

// Raw are the counters behind metrics that report.ServerStats does not
// carry. A nil func leaves its metrics out.
type Raw struct {
	// NTP returns the NTP server's counters: requests by mode.
	NTP func() udpserve.Snapshot
	// KE returns the NTS-KE listener's counters, for the handshake latency
	// histogram; ok is false when NTS-KE is off.
	KE func() (s kelisten.Stats, ok bool)
}

// Limits of the HTTP endpoint. A scrape is a few kilobytes and well under a
// second; the limits keep a slow or hostile client on the metrics address
// from holding connections or memory (slowloris, huge headers), and the
// in-flight cap keeps scrapes from queueing on the upstream engine's loop.
const (
	readHeaderTimeout  = 5 * time.Second
	readTimeout        = 10 * time.Second
	writeTimeout       = 15 * time.Second
	idleTimeout        = time.Minute
	maxHeaderBytes     = 8 << 10
	maxScrapesInFlight = 4
	scrapeTimeout      = 10 * time.Second
	shutdownTimeout    = 2 * time.Second
)

// NewHandler returns the endpoint: /metrics from rep and raw plus the Go
// runtime and process collectors, /healthz and /readyz. log may be nil.
func NewHandler(rep report.Reporter, raw Raw, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		&collector{rep: rep, raw: raw, d: newDescs(), log: log},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            zap.NewStdLog(log),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight,
		Timeout:             scrapeTimeout,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready(w, rep.Status())
	})
	return mux
}

// ready answers 200 only while synchronised time is served (holding over
// included: the time is still within its advertised error bound), and 503
// with the state and the reason otherwise, so that a load balancer takes an
// unsynchronised gateway out of rotation and says why.
func ready(w http.ResponseWriter, st report.Status) {
	if st.Synchronised {
		text(w, http.StatusOK, st.State)
		return
	}
	msg := st.State
	if st.Reason != "" {
		msg += ": " + st.Reason
	}
	text(w, http.StatusServiceUnavailable, msg)
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}

// Listen opens the metrics listener on exactly addr.
func Listen(ctx context.Context, addr netip.AddrPort) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return ln, nil
}

// Serve serves h on ln until ctx ends, then closes ln and lets scrapes in
// progress finish for a moment.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          zap.NewStdLog(log),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	})
	defer stop()
	err := srv.Serve(newLimitListener(ln, maxConns))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("metrics: %w", err)
}
