package main

import (
	"os"
	"syscall"

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/internal/gateway"
)

// handleSignals: SIGHUP reloads configuration, keys and certificate;
// SIGUSR1 rotates the NTS key ring now (kept keys still open old cookies).
func handleSignals(g *gateway.Gateway, sigs <-chan os.Signal, log *zap.Logger) {
	for sig := range sigs {
		if sig == syscall.SIGUSR1 {
			if err := g.RotateNTSKeys(); err != nil {
				log.Error("NTS key rotation failed; the previous ring stays in use", zap.Error(err))
			}
			continue
		}
		if err := g.Reload(); err != nil {
			log.Error("reload rejected; still serving the previous configuration", zap.Error(err))
		}
	}
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Embedded()
	}
	return config.Load(path)
}
