//go:build linux

package kelisten

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// lowerPriority moves the calling goroutine onto an OS thread of its own
// and lowers that thread's scheduling priority to nice: the handshake's
// public-key work then yields the CPU to the NTP workers whenever both
// want it. It never unlocks: a thread once niced cannot be raised again
// without CAP_SYS_NICE, so it must not go back to the runtime's pool; Go
// ends a thread whose goroutine exits while locked to it. It reports
// whether the priority was lowered.
func lowerPriority(nice int) bool {
	runtime.LockOSThread()
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice) == nil
}
