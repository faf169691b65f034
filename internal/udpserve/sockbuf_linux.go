package udpserve

import (
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// What SO_MEMINFO returns (sk_get_meminfo, <linux/sock_diag.h>): an array
// of u32 of which SK_MEMINFO_DROPS, the socket's sk_drops, is the ninth.
// x/sys/unix does not define the indices.
const (
	skMeminfoDrops = 8
	skMeminfoVars  = 9
)

// setRcvBuf sets c's receive buffer to n bytes (see Listen). With
// CAP_NET_ADMIN (root) SO_RCVBUFFORCE sets it beyond net.core.rmem_max;
// without, SO_RCVBUF, which the kernel silently caps at rmem_max: Listen's
// caller reads back what was granted (ReceiveBuffer) and says so.
func setRcvBuf(c *net.UDPConn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setRcvBufFD(int(fd), n, true) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("udpserve: receive buffer of %d bytes: %w", n, serr)
	}
	return nil
}

func setRcvBufFD(fd, n int, force bool) error {
	if force && unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) == nil {
		return nil
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n)
}

// ReceiveBuffer reports the receive buffer the kernel gave c, in the units
// SO_RCVBUF takes: Linux reserves, and reports, twice the value set, the
// other half for its own bookkeeping (socket(7)), so this is half of what
// getsockopt returns. (A socket left at net.core.rmem_default was not
// doubled: it reports half of that default.)
func ReceiveBuffer(c *net.UDPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = rcvBufFD(int(fd)) }); err != nil {
		return 0, err
	}
	return v, gerr
}

func rcvBufFD(fd int) (int, error) {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	return v / 2, err
}

// kernelDrops reads the kernel's count of datagrams it dropped for the
// socket fd instead of queueing them (sk_drops, the drops column of
// /proc/net/udp): its receive buffer was full, or, rarely, the datagram's
// checksum was bad. One getsockopt, made when the counters are read,
// never per packet. False when the kernel lacks SO_MEMINFO (before 4.12).
func kernelDrops(fd int) (uint32, bool) {
	var mi [skMeminfoVars]uint32
	l := uint32(unsafe.Sizeof(mi))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mi[0])), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 || l < (skMeminfoDrops+1)*4 {
		return 0, false
	}
	return mi[skMeminfoDrops], true
}
