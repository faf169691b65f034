package gateway

import (
	"fmt"
	"runtime/debug"
	"time"

	"timegate/internal/config"
	"timegate/internal/engine"
	"timegate/internal/sysclock"
	"timegate/ntp"
	"timegate/symkey"
	"timegate/upstream"
)

// newUpstream builds the upstream engine for the configured sources, or nil when there
// are none. It must run after the initial state is stored: with `local stratum N` that
// state is what the engine falls back to while unsynchronised, as chrony serves its
// local reference only when it has no better source.
func (g *Gateway) newUpstream(cfg *config.Config, keys *symkey.Set) (*engine.Engine, []string, error) {
	if len(cfg.Sources) == 0 {
		return nil, nil, nil
	}
	var disc upstream.Discipliner
	if cfg.ClockControl {
		clock, err := sysclock.New()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: clockcontrol: %v", config.ErrConfig, cfg.Positions["clockcontrol"], err)
		}
		g.log.Warn("clockcontrol on: timegate will step and slew the SYSTEM clock")
		disc = clock
	}
	var fallback *ntp.ServedState
	if cfg.Local != nil {
		s := *g.state.Load()
		fallback = &s
	}
	e, warnings, err := engine.New(engine.Options{
		Sources:        cfg.Sources,
		MinSources:     cfg.MinSources,
		MaxDistance:    cfg.MaxDistance,
		AuthSelectMode: cfg.AuthSelectMode,
		Holdover:       holdoverOption(cfg.Holdover),
		MaxStartOffset: cfg.MaxStartOffset,
		PanicThreshold: cfg.MaxChange,
		Keys:           keys,
		TrustedCerts:   cfg.NTSTrustedCerts,
		NoSystemCert:   cfg.NoSystemCert,
		AEADs:          cfg.NTSAEADs,
		Precision:      g.precision,
		Fallback:       fallback,
		LocalDistance:  localDistance(cfg),
		OrphanStratum:  orphanStratum(cfg),
		Leap:           g.leapOptions(cfg),
		BuildDate:      buildDate(),
		Discipliner:    disc,
		DriftFile:      cfg.DriftFile,
		DumpDir:        cfg.DumpDir,
		LogDir:         cfg.LogDir,
		StepThreshold:  cfg.MakeStep.Threshold,
		StepLimit:      cfg.MakeStep.Limit,
		Logs:           cfg.Log,
		Publish:        g.state.Store,
		Audit:          g.rec.Record,
		Log:            g.log.Named("upstream"),
		Now:            g.opts.Now,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", config.ErrConfig, cfg.Positions["ntstrustedcerts"], err)
	}
	return e, warnings, nil
}

// buildDate is the commit time the binary was built from, when the toolchain recorded
// it: no source is believed about a time before it (a replayed or forged old time).
func buildDate() time.Time {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return time.Time{}
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.time" {
			t, err := time.Parse(time.RFC3339, s.Value)
			if err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// holdoverOption maps `holdover SECONDS` onto engine.Options, where 0 means
// the default: the directive's 0, documented as "no holdover", must not
// silently become 3600 s (campaign finding).
func holdoverOption(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// localDistance is `local … distance D`, 0 without `local`.
func localDistance(cfg *config.Config) time.Duration {
	if cfg.Local == nil {
		return 0
	}
	return cfg.Local.Distance
}

// orphanStratum is `local stratum N orphan`'s N, 0 without orphan.
func orphanStratum(cfg *config.Config) uint8 {
	if cfg.Local == nil || !cfg.Local.Orphan {
		return 0
	}
	return uint8(cfg.Local.Stratum)
}
