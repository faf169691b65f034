package keproc

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// helperName is what ps, top and the journal call a helper (a thread
// name holds 15 octets). Run through /proc/self/exe, it would be "exe".
const helperName = "timegate-ntske"

// nameProcess names every thread of this process helperName.
func nameProcess() error {
	return eachThread(func(tid int) error {
		return os.WriteFile(fmt.Sprintf("/proc/self/task/%d/comm", tid), []byte(helperName), 0)
	})
}

// idleProcess puts every thread of this process in SCHED_IDLE: the
// kernel then runs the helper only when no thread of normal priority
// wants the CPU, and a woken NTP worker preempts it at once. A nice value,
// even 19, does not do that under EEVDF: the running thread keeps the CPU
// for its slice (about 0.75 ms; BENCHMARKS.md, "NTS-KE in helper
// processes"). An unprivileged thread cannot leave SCHED_IDLE again.
func idleProcess() error {
	return eachThread(func(tid int) error {
		var param [1]int32 // struct sched_param: priority 0
		_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), schedIdle, uintptr(unsafe.Pointer(&param[0])))
		if e != 0 {
			return e
		}
		return nil
	})
}

// schedIdle is SCHED_IDLE (linux/sched.h).
const schedIdle = 5

// niceProcess sets every thread of this process to nice n. On Linux a nice
// value belongs to a thread.
func niceProcess(n int) error {
	return eachThread(func(tid int) error { return syscall.Setpriority(syscall.PRIO_PROCESS, tid, n) })
}

// eachThread applies f to every thread of this process. A new thread
// inherits its name and nice value from the thread that creates it: once
// every existing thread has them, so do all the Go runtime starts later.
// Threads started while a pass ran are caught by the next; the runtime
// starts few, so this ends after a pass that finds none new. A thread that
// exited since the listing is no error.
func eachThread(f func(tid int) error) error {
	done := map[int]bool{}
	for {
		tids, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := false
		for _, t := range tids {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := f(tid); err != nil && !os.IsNotExist(err) && err != syscall.ESRCH {
				return err
			}
			done[tid], fresh = true, true
		}
		if !fresh {
			return nil
		}
	}
}
