package main

import (
	"errors"
	"flag"
	"fmt"

	"timegate/internal/config"
	"timegate/internal/gateway"
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
func versionString() string { return "timegate " + gateway.Version() }

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
