//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package sockstamp

import (
	"encoding/binary"
	"net"
	"syscall"
	"time"
)

// SO_TIMESTAMPNS makes the kernel attach the time each datagram arrived,
// taken in the network stack rather than when our goroutine got scheduled:
// the receive timestamp then excludes user-space queueing delay.
// OOBSize is the control-message buffer a read needs for the timestamp.
const OOBSize = 64

// Enable asks the kernel to timestamp every datagram c receives.
func Enable(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// Time finds SCM_TIMESTAMPNS in a control message buffer without
// allocating (syscall.ParseSocketControlMessage allocates per call).
func Time(oob []byte) (time.Time, bool) {
	const hdr = syscall.SizeofCmsghdr
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob[0:8]))
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		if l < hdr || l > len(oob) {
			return time.Time{}, false
		}
		if level == syscall.SOL_SOCKET && typ == syscall.SCM_TIMESTAMPNS && l >= hdr+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdr:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8:]))
			return time.Unix(sec, nsec), true
		}
		next := (l + 7) &^ 7
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return time.Time{}, false
}
