// Package pidfile writes chrony's and ntpd's `pidfile`: the daemon's process
// ID, so that init scripts and monitoring find it. Like chronyd, timegate
// refuses to start when the file names a timegate that is still running: two
// daemons would fight over the ports and the NTS key ring.
package pidfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrRunning: the PID file names a live process of the same program.
var ErrRunning = errors.New("pidfile: another instance is running")

// Write records pid in path, atomically (a temporary file renamed over it,
// mode 0644 as chronyd writes it), after checking that a previous file does
// not name a live instance of comm. The returned function removes the file
// if it still holds pid; call it on a clean exit.
func Write(path string, pid int, comm string) (remove func(), err error) {
	if old, err := os.ReadFile(path); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(old))); err == nil && p != pid && running(p, comm) {
			return nil, fmt.Errorf("%w: %s names PID %d", ErrRunning, path, p)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("pidfile: %w", err)
	}
	_, werr := fmt.Fprintf(tmp, "%d\n", pid)
	cerr := tmp.Chmod(0o644)
	if err := errors.Join(werr, cerr, tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("pidfile: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("pidfile: %w", err)
	}
	return func() {
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
			os.Remove(path)
		}
	}, nil
}

// running reports whether process pid exists and is comm (its
// /proc/PID/comm): a stale file whose PID was reused by another program
// does not block a start.
func running(pid int, comm string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return false
	}
	c := strings.TrimSpace(string(b))
	// /proc/PID/comm is cut at 15 characters.
	return c == comm || (len(comm) > 15 && c == comm[:15])
}

// WriteSelf is Write for this process, under the name the kernel gives it.
func WriteSelf(path string) (remove func(), err error) {
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		return nil, fmt.Errorf("pidfile: %w", err)
	}
	return Write(path, os.Getpid(), strings.TrimSpace(string(b)))
}
