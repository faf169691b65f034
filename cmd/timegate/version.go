package main

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"timegate/internal/config"
	"timegate/internal/pidfile"
)

// usageExit maps a flag parsing error to the exit status: -h and -help ask
// for the usage, which is a success (0); anything else is a usage error (2).
func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// versionString is "timegate MODULE-VERSION (REVISION[+dirty] TIME) GOVERSION",
// from what the toolchain recorded in the binary.
func versionString() string {
	version, rev, when, dirty := "(devel)", "unknown revision", "", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = " " + s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
	}
	return fmt.Sprintf("timegate %s (%s%s%s) %s", version, rev, dirty, when, runtime.Version())
}

// writePID writes the `pidfile` once the sockets are bound, and returns what
// removes it on a clean exit.
func writePID(cfg *config.Config) (func(), error) {
	if cfg.PIDFile == "" {
		return func() {}, nil
	}
	remove, err := pidfile.WriteSelf(cfg.PIDFile)
	if err != nil {
		return nil, fmt.Errorf("%s: pidfile: %w", cfg.Positions["pidfile"], err)
	}
	return remove, nil
}
