// Package secfile reads and writes files that hold secrets: TLS private keys,
// NTP symmetric key files and the NTS key ring.
//
// Reading refuses a secret that other local users could read or alter, the
// way OpenSSH refuses a private key with loose permissions: a key that has
// already leaked should not quietly go into service. The one rule, for every
// secret timegate reads (keys file, TLS private key, NTS key ring):
//
//   - no permission at all for others (mode & 0o007 == 0);
//   - the group may read but not write (mode & 0o020 == 0): 0640 with a group
//     such as _chrony or ssl-cert is how Debian ships chrony.keys and TLS
//     keys, and a reading group cannot alter the secret;
//   - owned by root, by the user timegate runs as or by the user a root
//     start drops to (ReadPrivateOwned): any other owner could chmod the
//     file open, or replace it, at any time;
//   - no directory on its way writable by others without the sticky bit
//     (checkDirs), or any local user could put their own file there.
//
// Writing is atomic, so a crash or a concurrent reader never sees a
// half-written key.
package secfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// MaxSize caps how much ReadPrivate reads. Real secrets are a few kilobytes
// (an RSA-8192 key in PEM is under 7 KiB, a key ring of a year of daily keys
// is smaller still); the cap stops a misconfigured or malicious path (a huge
// log file, a file grown by another user before the mode was fixed) from
// exhausting memory at startup or on every reload.
const MaxSize = 1 << 20

// Errors returned by this package, wrapped with the file name and details.
var (
	ErrInsecureMode  = errors.New("secfile: file is writable by its group or accessible by others")
	ErrInsecureOwner = errors.New("secfile: file is owned by another user than root, this process's or timegate's")
	ErrNotRegular    = errors.New("secfile: not a regular file")
	ErrTooLarge      = errors.New("secfile: file too large")
)

// ReadPrivate reads the secret file at path. It refuses the file when it breaks
// the package's rule (others have any access, the group may write, the owner
// is neither root nor the effective user), when it is not a regular file, and
// when it is larger than MaxSize.
//
// Symbolic links are followed, on purpose: certbot's live/ directory and
// Kubernetes secret volumes are made of symlinks. The checks apply to the
// file actually opened (fstat on the descriptor, never a second lookup of the
// name), so a symlink cannot launder a world-readable target, and swapping
// the file between the check and the read is not possible.
//
// The directories on the way to the file must not be writable by others
// (see checkDirs).
func ReadPrivate(path string) ([]byte, error) {
	return ReadPrivateOwned(path)
}

// ReadPrivateOwned is ReadPrivate for a secret that may also be owned by
// one of owners (besides root and the effective user): the NTS key ring,
// which a root start reads from a state directory that the unprivileged
// user it drops to owns and writes.
func ReadPrivateOwned(path string, owners ...int) ([]byte, error) {
	if err := checkDirs(path); err != nil {
		return nil, err
	}
	// O_NONBLOCK keeps open(2) from blocking forever when path names a FIFO
	// with no writer; such a file is refused just below.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("secfile: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secfile: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is a %s", ErrNotRegular, path, kind(fi.Mode()))
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; fix it with chmod 600 %s (or 640 to let a group read it)",
			ErrInsecureMode, path, perm, path)
	}
	if err := checkOwner(path, fi, owners); err != nil {
		return nil, err
	}
	if fi.Size() > MaxSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, path, fi.Size(), MaxSize)
	}
	// The file may grow after fstat; read at most one byte past the cap to
	// tell "exactly MaxSize" from "more".
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("secfile: reading %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %s grew past %d bytes while being read", ErrTooLarge, path, MaxSize)
	}
	return data, nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	default:
		return "special file (" + m.Type().String() + ")"
	}
}

// WriteAtomic replaces path with data so that a reader, a crash or a power
// loss sees either the old contents or the new, never a mix or an empty file:
// it writes a temporary file in the same directory (rename is atomic only
// within one file system), fsyncs it, sets perm, renames it over path and
// fsyncs the directory so the rename itself is durable.
//
// perm is applied with fchmod, so the process umask does not weaken or
// strengthen it. The temporary file is created 0600, so a secret is never
// readable by others even for an instant. If path is a symlink, the link
// itself is replaced by a regular file, not the file it points to.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomicOwned(path, data, perm, -1, -1)
}

// writeAtomicOwned is WriteAtomic with the new file's owner and group set
// (-1 leaves them as created) before it takes the name, so that no reader
// ever sees the secret under another owner.
func writeAtomicOwned(path string, data []byte, perm os.FileMode, uid, gid int) (err error) {
	if perm&^os.ModePerm != 0 {
		return fmt.Errorf("secfile: %s: perm %v has bits other than permissions", path, perm)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("secfile: %w", err)
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("secfile: writing %s: %w", tmp.Name(), err)
	}
	if uid >= 0 || gid >= 0 {
		if err = tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("secfile: keeping the owner of %s: %w", path, err)
		}
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("secfile: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("secfile: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("secfile: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("secfile: %w", err)
	}
	renamed = true
	return SyncDir(dir)
}

// SyncDir makes a rename, link or removal in dir durable: without it the
// new directory entry may be lost on power failure even though the file
// data was synced.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("secfile: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("secfile: syncing directory %s: %w", dir, err)
	}
	return nil
}

// Replace writes a new version of the secret file at path atomically,
// keeping the owner, group and mode of the file it replaces (a keys file
// shared with chrony is root:_chrony 0640, and a root gatectl must not
// leave it unreadable to the group, nor a dropped daemon take it over),
// minus any group-write or other bits the rule forbids. A new file gets
// perm and the writer's owner.
func Replace(path string, data []byte, perm os.FileMode) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return WriteAtomic(path, data, perm)
	}
	if err != nil {
		return fmt.Errorf("secfile: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return WriteAtomic(path, data, fi.Mode().Perm()&^0o027)
	}
	return writeAtomicOwned(path, data, fi.Mode().Perm()&^0o027, int(st.Uid), int(st.Gid))
}

// LockDir takes an exclusive advisory lock on the directory holding path,
// for read-modify-write edits that may come from two processes (the daemon,
// and a root gatectl that edits the file itself because the daemon may no
// longer write it): the file itself is replaced by rename, so a lock on it
// would not exclude the next editor.
func LockDir(path string) (unlock func(), err error) {
	dir := filepath.Dir(path)
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("secfile: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("secfile: locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
