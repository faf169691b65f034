// Package privdrop lets timegate give up root once it has bound its sockets
// and read what only root may read (chrony's `user` directive). It is the
// edge's last step before serving: check that the target user will still be
// able to do everything the daemon does later (re-read the configuration,
// keys and certificate on reload, write the key ring), hand the state the
// daemon created over to that user, then switch user and keep only the
// capability the configuration needs (CAP_SYS_TIME with `clockcontrol on`,
// nothing otherwise).
package privdrop

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// Target is the user to become.
type Target struct {
	Name     string
	UID, GID int
	Groups   []int // supplementary groups, the primary one included
}

// Lookup finds a user by name, with its supplementary groups.
func Lookup(name string) (Target, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return Target{}, fmt.Errorf("privdrop: user %q: %w", name, err)
	}
	t := Target{Name: name}
	if t.UID, err = strconv.Atoi(u.Uid); err != nil {
		return Target{}, fmt.Errorf("privdrop: user %q: uid %q", name, u.Uid)
	}
	if t.GID, err = strconv.Atoi(u.Gid); err != nil {
		return Target{}, fmt.Errorf("privdrop: user %q: gid %q", name, u.Gid)
	}
	if t.UID == 0 {
		return Target{}, fmt.Errorf("privdrop: user %q has uid 0: that drops nothing", name)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return Target{}, fmt.Errorf("privdrop: groups of %q: %w", name, err)
	}
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil && !slices.Contains(t.Groups, n) {
			t.Groups = append(t.Groups, n)
		}
	}
	if !slices.Contains(t.Groups, t.GID) {
		t.Groups = append(t.Groups, t.GID)
	}
	return t, nil
}

// Needs is what the daemon does with files after the drop.
type Needs struct {
	// Read are files it re-reads (configuration, keys, certificate and key).
	Read []string
	// Write are directories it creates and replaces files in (the NTS key
	// ring's ntsdumpdir, the audit spool).
	Write []string
}

// Check reports, before anything changes, every need the target could not
// meet, each with its fix. It reads only mode bits and owners, so it gives
// the same answer as root as the target would get after the drop.
func Check(t Target, n Needs) error {
	var errs []error
	for _, p := range n.Read {
		if err := t.may(p, 4); err != nil {
			errs = append(errs, fmt.Errorf("%s must stay readable after dropping to user %s (re-read on reload): %w", p, t.Name, err))
		}
	}
	for _, d := range n.Write {
		if err := t.may(d, 2|1); err != nil {
			errs = append(errs, fmt.Errorf("directory %s must stay writable after dropping to user %s: %w", d, t.Name, err))
		}
	}
	return errors.Join(errs...)
}

// may checks that t can reach path (search permission on every parent) and
// has the access bits want (4 read, 2 write, 1 search/execute) on it.
func (t Target) may(path string, want uint32) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if err := t.access(dir, 1); err != nil {
			return err
		}
		if dir == "/" {
			break
		}
	}
	return t.access(abs, want)
}

func (t Target) access(path string, want uint32) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	mode := uint32(fi.Mode().Perm())
	var have uint32
	switch {
	case int(st.Uid) == t.UID:
		have = mode >> 6
	case slices.Contains(t.Groups, int(st.Gid)):
		have = (mode >> 3) & 7
	default:
		have = mode & 7
	}
	if have&want != want {
		return fmt.Errorf("%s is owned by %d:%d with mode %04o (fix: chown %s %s, or grant its group %d)",
			path, st.Uid, st.Gid, mode, t.Name, path, t.GID)
	}
	return nil
}

// Adopt hands paths the daemon created as root (its state directory and
// what is in it, the control socket's directory) to the target, so that it
// can keep writing them. Only paths owned by root are changed: an operator's
// own ownership choices are left alone. Missing paths are skipped.
func Adopt(t Target, paths ...string) error {
	var errs []error
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			fi, err := os.Lstat(path)
			if err != nil {
				return err
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid == 0 {
				return os.Lchown(path, t.UID, t.GID)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("privdrop: handing %s to %s: %w", p, t.Name, err))
		}
	}
	return errors.Join(errs...)
}
