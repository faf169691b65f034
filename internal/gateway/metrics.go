package gateway

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/internal/kelisten"
	"timegate/internal/metrics"
	"timegate/internal/udpserve"
)

// metricsListen opens the `metrics` listener, if configured, in New: a port
// in use fails at start like every other socket.
func (g *Gateway) metricsListen(cfg *config.Config) error {
	if !cfg.Metrics.IsValid() {
		return nil
	}
	ln, err := metrics.Listen(context.Background(), cfg.Metrics)
	if err != nil {
		return fmt.Errorf("gateway: %s: metrics: %w", cfg.Positions["metrics"], err)
	}
	g.metricsLn = ln
	g.log.Info("serving metrics", zap.String("url", "http://"+ln.Addr().String()+"/metrics"))
	return nil
}

// serveMetrics serves the metrics endpoint from the gateway's reports and
// raw counters until ctx ends.
func (g *Gateway) serveMetrics(ctx context.Context) error {
	log := g.log.Named("metrics")
	raw := metrics.Raw{
		NTP: func() udpserve.Snapshot { return g.stats.Snapshot() },
		KE: func() (kelisten.Stats, bool) {
			if g.nts == nil {
				return kelisten.Stats{}, false
			}
			ks, _, _ := g.nts.stats()
			return ks, true
		},
	}
	return metrics.Serve(ctx, g.metricsLn, metrics.NewHandler(g, raw, log), log)
}
