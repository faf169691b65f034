package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// SocketMode is the control socket's file mode: the daemon's user and the
// admin group may connect, nobody else (connecting to a Unix socket needs
// write permission on it).
const SocketMode = 0o660

// dirMode is for a directory Listen creates: the socket exists with the
// umask's mode for an instant between bind and chmod, so its directory must
// already keep others out.
const dirMode = 0o750

// Listen binds the control socket at path: it creates the directory if
// missing, replaces a stale socket left by a crashed daemon (but refuses to
// take over one that answers, or a file that is not a socket), then sets
// mode 0660 and group gid (-1: leave the group as created).
func Listen(path string, gid int) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	// Only the listener that created the file removes it on Close.
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control: socket group: %w", err)
		}
	}
	return ln, nil
}

// removeStale deletes path if it is a socket nobody listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control: %s exists and is not a socket: remove it or choose another bindcmdaddress", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control: %s: another timegate is running with this control socket", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("control: removing stale socket: %w", err)
	}
	return nil
}

// Policy is who may use the control socket: root, the daemon's own user,
// and members of the admin group (primary or supplementary).
type Policy struct {
	UID int // the daemon's effective user
	GID int // the admin group; -1 for none
	// Groups returns the supplementary groups of a process (nil: read
	// /proc/PID/status). A test may inject it.
	Groups func(pid int) ([]int, error)
}

// ErrNotAllowed is returned by Policy.Authorize for a caller it refuses.
var ErrNotAllowed = errors.New("caller is neither root, the daemon's user, nor in its admin group")

// Authorize implements Server.Authorize.
func (p Policy) Authorize(c Cred) error {
	if !c.Known {
		// Without SO_PEERCRED the socket file's mode is the only check.
		return nil
	}
	if c.UID == 0 || c.UID == p.UID || (p.GID >= 0 && c.GID == p.GID) {
		return nil
	}
	if p.GID < 0 {
		return ErrNotAllowed
	}
	groups := p.Groups
	if groups == nil {
		groups = procGroups
	}
	// The caller is still connected, so its PID names the same process
	// (a PID is reused only after the process is gone).
	gs, err := groups(c.PID)
	if err != nil {
		return fmt.Errorf("%w (its groups are unreadable: %v)", ErrNotAllowed, err)
	}
	if slices.Contains(gs, p.GID) {
		return nil
	}
	return ErrNotAllowed
}

// ProcessPolicy is the policy for this process: its effective user and the
// given admin group.
func ProcessPolicy(gid int) Policy {
	return Policy{UID: syscall.Geteuid(), GID: gid}
}
