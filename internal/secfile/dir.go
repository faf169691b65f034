package secfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// ErrInsecureDir is returned when a directory on the way to a secret lets
// other users replace it.
var ErrInsecureDir = errors.New("secfile: directory is writable by others")

// checkOwner refuses a secret that another user owns. A key ring planted
// by user nobody in a directory it could write (mode 0600, its own) was
// loaded by timegate as root, which handed nobody every client's NTS keys.
func checkOwner(path string, fi os.FileInfo, owners []int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil // no owner to check on this system
	}
	uid := int(st.Uid)
	if uid == 0 || uid == os.Geteuid() || slices.Contains(owners, uid) {
		return nil
	}
	return fmt.Errorf("%w: %s is owned by uid %d; if that is right, chown it to root or to timegate's user, "+
		"otherwise someone planted it", ErrInsecureOwner, path, uid)
}

// maxDirDepth bounds the walk up a path: a symlink loop or an absurdly deep
// path named in a config file must not turn a start-up check into a hang.
const maxDirDepth = 64

// checkDirs refuses a secret whose directory, or any directory above it,
// other users may write without the sticky bit, as OpenSSH's secure_path
// does for authorized_keys. Such a directory lets any local user plant a
// file of their own under the secret's name (a campaign found an NTS key
// ring planted in a 0777 ntsdumpdir and loaded as root, which gave away
// every client's NTS keys) or swap the real one for a symlink. A sticky
// directory such as /tmp is allowed: only a file's owner may rename or
// delete it there, and ReadPrivate checks the owner of the file itself.
//
// Both the path as named and the path with symlinks resolved are checked:
// the first guards the link, the second the file it leads to.
func checkDirs(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("secfile: %w", err)
	}
	paths := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		paths = append(paths, real)
	}
	for _, p := range paths {
		dir := filepath.Dir(p)
		for range maxDirDepth {
			if err := checkDir(dir, path); err != nil {
				return err
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return nil
}

func checkDir(dir, secret string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("secfile: %w", err)
	}
	if m := fi.Mode(); m&0o002 != 0 && m&os.ModeSticky == 0 {
		return fmt.Errorf("%w: %s (holding %s) has mode %04o, so any local user may replace the secret; "+
			"fix it with chmod o-w %s, or keep the secret in a directory only timegate's user and root can write",
			ErrInsecureDir, dir, secret, m.Perm(), dir)
	}
	return nil
}
