package gateway

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/internal/privdrop"
)

// defaultUser is who a root start runs as when `user` says nothing, if that user
// exists (make install and the sysusers snippet create it).
const defaultUser = "timegate"

// DropPrivileges switches to the configured user once every socket is bound
// and every root-only file is read (New has done both), keeping CAP_SYS_TIME
// only with `clockcontrol on`. Before anything changes it checks that the user
// can still re-read the configuration, keys and certificate on reload and
// write the key ring, and fails naming each path and its fix otherwise; what
// the daemon created as root (state directory, key ring, control socket) is
// handed to the user first. Not running as root, it does nothing.
func (g *Gateway) DropPrivileges() error {
	cfg := g.cfg.Load()
	if os.Geteuid() != 0 {
		if cfg.User != "" {
			if u, err := user.Current(); err != nil || u.Username != cfg.User {
				g.log.Warn("not started as root: `user` has no effect", zap.String("user", cfg.User))
			}
		}
		return nil
	}
	name := cfg.User
	if name == "" {
		name = defaultUser
	}
	if name == "root" {
		g.log.Warn("running as root (user root): prefer a dedicated user")
		return nil
	}
	t, err := privdrop.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if cfg.User == "" && errors.As(err, &unknown) {
			g.log.Warn("running as root: create a `timegate` user (make install does) or name one with `user`")
			return nil
		}
		return fmt.Errorf("%w: %s: user: %v", config.ErrConfig, cfg.Positions["user"], err)
	}
	if err := privdrop.Adopt(t, g.ownedPaths(cfg)...); err != nil {
		return err
	}
	if err := privdrop.Check(t, g.needs(cfg)); err != nil {
		return fmt.Errorf("gateway: cannot run as %s:\n%w", name, err)
	}
	// The drift file, dumps and statistics logs only make restarts and
	// diagnosis better, and a drop-in chrony.conf names chrony's own
	// directories: a start is not refused for them, but the operator learns
	// now, not at the first failed write after the drop.
	if err := privdrop.Check(t, privdrop.Needs{Write: optionalWrites(cfg)}); err != nil {
		for _, e := range unjoin(err) {
			g.log.Warn("will not be written after the privilege drop", zap.String("user", name), zap.Error(e))
		}
	}
	if err := privdrop.Drop(t, cfg.ClockControl); err != nil {
		return err
	}
	g.ctlPolicy.UID = t.UID
	caps := "none"
	if cfg.ClockControl {
		caps = "CAP_SYS_TIME"
	}
	g.log.Info("dropped privileges", zap.String("user", name), zap.Int("uid", t.UID), zap.Int("gid", t.GID), zap.String("capabilities", caps))
	return nil
}

// ownedPaths are what the daemon created and keeps writing: the state
// directory (generated certificate, key ring), the ntsdumpdir, the control
// socket and, for the default /run/timegate, its directory.
func (g *Gateway) ownedPaths(cfg *config.Config) []string {
	paths := []string{g.opts.StateDir}
	if cfg.NTSDumpDir != "" {
		paths = append(paths, cfg.NTSDumpDir)
	}
	if g.ctlPath != "" {
		if dir := filepath.Dir(g.ctlPath); dir == "/run/timegate" || dir == g.opts.StateDir {
			paths = append(paths, dir)
		} else {
			paths = append(paths, g.ctlPath)
		}
	}
	return paths
}

// needs are the files re-read and directories written after the drop.
func (g *Gateway) needs(cfg *config.Config) privdrop.Needs {
	var n privdrop.Needs
	if g.opts.ConfigPath != "" {
		n.Read = append(n.Read, g.opts.ConfigPath)
	}
	for _, p := range []string{cfg.KeyFile, cfg.NTSServerCert, cfg.NTSServerKey} {
		if p != "" {
			n.Read = append(n.Read, p)
		}
	}
	n.Read = append(n.Read, cfg.NTSTrustedCerts...)
	if ks := cfg.NTSKeyStore; ks != nil {
		// Read at start only, but `gatectl config check` re-reads them as
		// the daemon's user, as it does the keys file.
		for _, p := range []string{ks.WrapKey, ks.CA, ks.Cert, ks.Key, ks.PasswordFile} {
			if p != "" {
				n.Read = append(n.Read, p)
			}
		}
	}
	if g.keys != nil && !g.keys.follower() {
		n.Write = append(n.Write, filepath.Dir(g.keys.path()))
	}
	return n
}

// optionalWrites are the directories the daemon writes only for
// driftfile, dumpdir, logdir (with a log line) and auditlog's spool, each
// as the nearest directory that exists, since some are created on first use.
func optionalWrites(cfg *config.Config) []string {
	var dirs []string
	add := func(d string) {
		if d == "" {
			return
		}
		d = filepath.Clean(d)
		for {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				break
			}
			parent := filepath.Dir(d)
			if parent == d {
				return
			}
			d = parent
		}
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	if cfg.DriftFile != "" {
		add(filepath.Dir(cfg.DriftFile))
	}
	add(cfg.DumpDir)
	if cfg.Log.Any() {
		add(cfg.LogDir)
	}
	return dirs
}

// unjoin splits what errors.Join made, so that each path is one log line.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// trustedOwners are the users besides root and ourselves who may own a
// secret (NTS key ring, TLS key, keys file): for a root start, the user it
// drops to, which owns and writes the state directory after the first run
// and must be able to re-read the others. A lookup that fails trusts
// nobody more; DropPrivileges reports the error.
func trustedOwners(cfg *config.Config) []int {
	if os.Geteuid() != 0 {
		return nil
	}
	name := cfg.User
	if name == "" {
		name = defaultUser
	}
	if name == "root" {
		return nil
	}
	t, err := privdrop.Lookup(name)
	if err != nil {
		return nil
	}
	return []int{t.UID}
}
