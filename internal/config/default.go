package config

import (
	_ "embed"
	"os"
	"path/filepath"
)

// defaultConf is the configuration timegate runs with when no -config is
// given. It is parsed by the same parser as any file, so it cannot drift
// from what the parser accepts.
//
//go:embed default.conf
var defaultConf []byte

// EmbeddedName is how the embedded defaults are named in messages.
const EmbeddedName = "<embedded defaults>"

// Embedded returns the embedded default configuration.
func Embedded() (*Config, error) { return Parse(EmbeddedName, defaultConf) }

// EmbeddedText returns the embedded default configuration text.
func EmbeddedText() []byte { return append([]byte(nil), defaultConf...) }

// DefaultStateDir is where timegate keeps state when the configuration
// names no directory: systemd's StateDirectory, /var/lib/timegate for root,
// else the user's XDG state directory, so a non-root first run just works.
func DefaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/timegate"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "timegate")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "timegate")
	}
	return filepath.Join(os.TempDir(), "timegate")
}

// DefaultControlSocket is where the control socket goes when no
// `bindcmdaddress` says: systemd's RuntimeDirectory, else /run/timegate for
// root on the default state directory, else inside the state directory (an
// unprivileged user cannot create /run/timegate, and a daemon given its own
// -state must not collide with the system one).
func DefaultControlSocket(stateDir string) string {
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" {
		return filepath.Join(d, ControlSocketName)
	}
	if os.Geteuid() == 0 && stateDir == "/var/lib/timegate" {
		return filepath.Join("/run/timegate", ControlSocketName)
	}
	return filepath.Join(stateDir, ControlSocketName)
}

// ControlSocketName is the control socket's file name in its directory.
const ControlSocketName = "timegate.sock"
