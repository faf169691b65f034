package privdrop

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// Linux constants not in package syscall.
const (
	prSetKeepCaps        = 8  // PR_SET_KEEPCAPS
	prSetNoNewPrivs      = 38 // PR_SET_NO_NEW_PRIVS
	prCapAmbient         = 47 // PR_CAP_AMBIENT
	prCapAmbientClearAll = 4  // PR_CAP_AMBIENT_CLEAR_ALL
	capSysTime           = 25 // CAP_SYS_TIME
	capV3                = 0x20080522
)

// Drop switches every thread of the process to t: supplementary groups, group,
// user; then, with keepSysTime, restores CAP_SYS_TIME (and nothing else) to the
// permitted and effective sets, so that `clockcontrol on` can still adjust the
// clock. It also sets no_new_privs, so nothing the process runs later can gain
// privileges. It must run before any goroutine relies on root.
//
// prctl and capset go through syscall.AllThreadsSyscall: they are per thread, and
// a Go program runs on many. That needs a binary built without cgo (CGO_ENABLED=0,
// as the Makefile builds). A cgo build still switches user on every thread (libc
// does that for setuid), but cannot set no_new_privs everywhere (skipped) or keep
// CAP_SYS_TIME (Drop fails with that advice rather than leave threads unequal).
func Drop(t Target, keepSysTime bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("privdrop: not running as root (uid %d): nothing to drop to %s", os.Geteuid(), t.Name)
	}
	if err := allThreads(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0); err != nil && (keepSysTime || !errors.Is(err, ErrCgo)) {
		return err
	}
	if keepSysTime {
		if err := allThreads(syscall.SYS_PRCTL, prSetKeepCaps, 1, 0); err != nil {
			return err
		}
	}
	groups := make([]int, len(t.Groups))
	copy(groups, t.Groups)
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("privdrop: setgroups: %w", err)
	}
	if err := syscall.Setresgid(t.GID, t.GID, t.GID); err != nil {
		return fmt.Errorf("privdrop: setresgid %d: %w", t.GID, err)
	}
	if err := syscall.Setresuid(t.UID, t.UID, t.UID); err != nil {
		return fmt.Errorf("privdrop: setresuid %d: %w", t.UID, err)
	}
	var want uint64
	if keepSysTime {
		want = 1 << capSysTime
		if err := setCaps(want); err != nil {
			return err
		}
	}
	return verify(t, want)
}

// ClearCapabilities empties every capability set (ambient, inheritable,
// permitted, effective) of every thread, whatever user the process is:
// what an NTS-KE helper does first, since it needs none and a non-root
// daemon may have been started with ambient ones (systemd's
// AmbientCapabilities=), which a non-root process keeps across execve. Only
// dropping, it needs no privilege. A cgo build cannot reach every thread;
// it is refused only when there is something to drop.
func ClearCapabilities() error {
	err := allThreads(syscall.SYS_PRCTL, prCapAmbient, prCapAmbientClearAll, 0)
	if err == nil || errors.Is(err, syscall.EINVAL) { // EINVAL: a kernel before ambient sets (4.3)
		err = setCaps(0)
	}
	if errors.Is(err, ErrCgo) && noCapabilities() {
		return nil
	}
	return err
}

// noCapabilities reports whether the process holds no capability in any
// set, as /proc says of it.
func noCapabilities() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if strings.HasPrefix(k, "Cap") && k != "CapBnd" && strings.Trim(strings.TrimSpace(v), "0") != "" {
			return false
		}
	}
	return true
}

// ErrCgo: the binary uses cgo, so AllThreadsSyscall is unavailable (make
// build never makes one; `go test` does).
var ErrCgo = errors.New("privdrop: this binary was built with cgo, which cannot change every thread's capabilities: build with CGO_ENABLED=0 (make build does)")

func allThreads(trap, a1, a2, a3 uintptr) error {
	_, _, errno := syscall.AllThreadsSyscall(trap, a1, a2, a3)
	if errno == syscall.ENOTSUP {
		return ErrCgo
	}
	if errno != 0 {
		return fmt.Errorf("privdrop: syscall %d: %w", trap, errno)
	}
	return nil
}

// setCaps sets the permitted and effective sets to caps (inheritable empty) on
// every thread.
func setCaps(caps uint64) error {
	hdr := struct {
		version uint32
		pid     int32
	}{capV3, 0}
	var data [2]struct{ effective, permitted, inheritable uint32 }
	data[0].effective, data[0].permitted = uint32(caps), uint32(caps)
	data[1].effective, data[1].permitted = uint32(caps>>32), uint32(caps>>32)
	err := allThreads(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if err != nil {
		return fmt.Errorf("privdrop: setting capabilities to %#x: %w", caps, err)
	}
	return nil
}

// verify reads back what the kernel says this process now is: the switch must
// have happened on every ID (real, effective, saved, filesystem) and the
// effective capabilities must be exactly caps.
func verify(t Target, caps uint64) error {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return fmt.Errorf("privdrop: verifying: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	seen := 0
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		switch k {
		case "Uid", "Gid":
			want := strconv.Itoa(t.UID)
			if k == "Gid" {
				want = strconv.Itoa(t.GID)
			}
			for _, id := range fields {
				if id != want {
					return fmt.Errorf("privdrop: after the drop %s is %v, want %s everywhere", k, fields, want)
				}
			}
			seen++
		case "CapEff", "CapPrm":
			got, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil || got != caps {
				return fmt.Errorf("privdrop: after the drop %s is %s, want %016x", k, strings.TrimSpace(v), caps)
			}
			seen++
		}
	}
	if seen != 4 {
		return errors.New("privdrop: /proc/self/status lacks Uid, Gid or capability lines")
	}
	return nil
}
