//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package sysclock

import "syscall"

// adjtimex performs the real system call.
func adjtimex(t *timex) (int32, error) {
	k := syscall.Timex{
		Modes:  t.modes,
		Offset: t.offset,
		Freq:   t.freq,
		Status: t.status,
	}
	k.Time.Sec = t.sec
	k.Time.Usec = t.nsec // with ADJ_NANO the kernel reads nanoseconds here
	_, err := syscall.Adjtimex(&k)
	return k.Status, err
}
