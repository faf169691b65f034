package gateway

import (
	"fmt"

	"timegate/internal/config"
	"timegate/symkey"
)

// defaultPoolSources is how many addresses a pool line contributes without
// maxsources (chrony's default, and the engine's).
const defaultPoolSources = 4

// syncWarnings says why a configuration can never synchronise, with the
// one-line fix: no source and no local clock; fewer usable sources than
// minsources, because authselectmode require never selects the
// unauthenticated ones or a key is missing. A pool counts as the addresses
// it may contribute. Nothing here is an error: the gateway still serves,
// unsynchronised (stratum 16) or from its local clock.
func syncWarnings(cfg *config.Config, keys *symkey.Set) []string {
	if len(cfg.Sources) == 0 {
		out := sourcelessWarnings(cfg)
		if cfg.Local == nil {
			out = append(out, fmt.Sprintf("%s: no server, pool or local line: timegate serves stratum 16 (unsynchronised) for ever; "+
				"add `server HOST nts iburst` lines, or `local stratum 10` to serve this host's clock", cfg.File))
		}
		return out
	}
	usable, unauth, missingKey := 0, 0, 0
	for _, s := range cfg.Sources {
		n := 1
		if s.Pool {
			n = defaultPoolSources
			if s.MaxSources != 0 {
				n = s.MaxSources
			}
		}
		switch {
		case s.KeyID != 0 && !hasKey(keys, s.KeyID):
			missingKey += n
		case !s.NTS && s.KeyID == 0 && cfg.AuthSelectMode == "require":
			unauth += n
		default:
			usable += n
		}
	}
	if usable >= cfg.MinSources {
		return nil
	}
	where := posOr(cfg, "minsources")
	var out []string
	if unauth > 0 {
		fix := "`authselectmode mix`"
		if n := usable + unauth; n < cfg.MinSources {
			fix = fmt.Sprintf("`authselectmode mix` and `minsources %d`", n)
		}
		out = append(out, fmt.Sprintf("%s: authselectmode require never selects the %d unauthenticated source(s): "+
			"add `nts` (or `key ID`) to their server lines, or write %s", posOr(cfg, "authselectmode"), unauth, fix))
	}
	if missingKey > 0 {
		out = append(out, fmt.Sprintf("%s: %d source(s) name a key that is not in the keys file: add the keys to it", posOr(cfg, "keyfile"), missingKey))
	}
	if usable == 0 {
		return append(out, fmt.Sprintf("%s: no usable source: timegate can never synchronise and serves %s",
			where, unsyncedServes(cfg)))
	}
	return append(out, fmt.Sprintf("%s: only %d usable source(s), fewer than minsources %d: timegate can never synchronise "+
		"and serves %s; add sources, or write `minsources %d`", where, usable, cfg.MinSources, unsyncedServes(cfg), usable))
}

func unsyncedServes(cfg *config.Config) string {
	if cfg.Local != nil {
		return fmt.Sprintf("its local clock at stratum %d", cfg.Local.Stratum)
	}
	return "stratum 16 (unsynchronised)"
}

func hasKey(keys *symkey.Set, id uint32) bool {
	_, ok := keys.Lookup(id)
	return ok
}

// posOr names the line that set a directive, or the file when the value is
// the default (Position.Line 0).
func posOr(cfg *config.Config, directive string) string {
	if p, ok := cfg.Positions[directive]; ok {
		return p.String()
	}
	return cfg.File
}

// sourcelessWarnings names the directives that act on the upstream engine,
// which a configuration without sources does not run: they would otherwise
// be accepted and do nothing without a word.
func sourcelessWarnings(cfg *config.Config) []string {
	var out []string
	for _, d := range []struct {
		name string
		set  bool
	}{
		{"driftfile", cfg.DriftFile != ""}, {"dumpdir", cfg.DumpDir != ""},
		{"logdir", cfg.LogDir != ""}, {"log", cfg.Log.Any()}, {"makestep", cfg.MakeStep != (config.MakeStep{})},
	} {
		if d.set {
			out = append(out, fmt.Sprintf("%s: %s: no effect without upstream sources (no server or pool line)", posOr(cfg, d.name), d.name))
		}
	}
	return out
}
