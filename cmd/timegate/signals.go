package main

import (
	"os"
	"syscall"

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/internal/gateway"
	"timegate/internal/sdnotify"
)

// handleSignals: SIGHUP reloads configuration, keys and certificate;
// SIGUSR1 rotates the NTS key ring now (kept keys still open old cookies);
// with a fleet store it publishes a rotation to every gateway.
func handleSignals(g *gateway.Gateway, sigs <-chan os.Signal, log *zap.Logger) {
	for sig := range sigs {
		if sig == syscall.SIGUSR1 {
			if err := g.RotateNTSKeys(g.FleetKeys()); err != nil {
				log.Error("NTS key rotation failed; the previous ring stays in use", zap.Error(err))
			}
			continue
		}
		notify(log, sdnotify.Reloading)
		if err := g.Reload(); err != nil {
			log.Error("reload rejected; still serving the previous configuration", zap.Error(err))
		}
		notify(log, sdnotify.Ready)
	}
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Embedded()
	}
	return config.Load(path)
}

// notify tells systemd (Type=notify) about a state change; outside systemd it
// does nothing.
func notify(log *zap.Logger, state string) {
	if _, err := sdnotify.Notify(state); err != nil {
		log.Warn("cannot notify systemd", zap.String("state", state), zap.Error(err))
	}
}
