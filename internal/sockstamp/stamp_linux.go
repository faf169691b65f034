//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package sockstamp

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SO_TIMESTAMPNS makes the kernel attach the time each datagram arrived,
// taken in the network stack rather than when our goroutine got scheduled:
// the receive timestamp then excludes user-space queueing delay.
// OOBSize is the control-message buffer a read needs for the timestamp:
// SCM_TIMESTAMPNS (32 octets), and SCM_TIMESTAMPING (64) where EnableTx
// could not keep that one to the error queue.
const OOBSize = 128

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

// sofRxFilter is SOF_TIMESTAMPING_OPT_RX_FILTER: SOFTWARE reporting for the
// error queue only, so received datagrams keep their one SO_TIMESTAMPNS
// stamp. Kernels without it refuse the flag; they then report both.
const sofRxFilter = 0x20000

// EnableTx asks the kernel for the software transmit timestamp of every
// datagram c sends (SO_TIMESTAMPING), returned on its error queue without
// the packet (OPT_TSONLY, which also works where net.core.tstamp_allow_data
// is 0): the upstream client's T1 then excludes the time between reading
// the clock and the packet reaching the device, as chronyd's does.
func EnableTx(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPING, txFlags|sofRxFilter)
		if serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPING, txFlags)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

const txFlags = unix.SOF_TIMESTAMPING_TX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE | unix.SOF_TIMESTAMPING_OPT_TSONLY

// EnableRaw is Enable and EnableTx for a descriptor outside Go's poller,
// through raw system calls (see internal/reqsock for why); it reports
// which of the two the kernel took.
func EnableRaw(fd uintptr) (rx, tx bool) {
	rx = setsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) == 0
	tx = setsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, txFlags|sofRxFilter) == 0 ||
		setsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, txFlags) == 0
	return rx, tx
}

func setsockoptInt(fd uintptr, level, opt int, v int32) syscall.Errno {
	_, _, errno := unix.RawSyscall6(unix.SYS_SETSOCKOPT, fd, uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v)), 4, 0)
	return errno
}

// ErrNoTxStamp: the error queue holds no transmit timestamp (yet).
var ErrNoTxStamp = errors.New("sockstamp: no transmit timestamp queued")

// TxTime reads the transmit timestamp of the datagram c sent last from its
// error queue, without waiting. On loopback and with most drivers it is
// there when the send returns; otherwise try again later (after the reply
// came, at the latest).
func TxTime(c *net.UDPConn) (time.Time, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return time.Time{}, err
	}
	var (
		oob  [128]byte
		t    time.Time
		rerr error
	)
	err = rc.Control(func(fd uintptr) {
		for {
			_, oobn, _, _, e := unix.Recvmsg(int(fd), nil, oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if e == unix.EINTR {
				continue
			}
			if e != nil {
				rerr = ErrNoTxStamp
				return
			}
			if ts, ok := TxStamp(oob[:oobn]); ok {
				t = ts // the last one queued is the last datagram's
			}
		}
	})
	if err != nil {
		return time.Time{}, err
	}
	if t.IsZero() {
		return time.Time{}, rerr
	}
	return t, nil
}

// TxStamp finds the software stamp, the first of SCM_TIMESTAMPING's three
// timespecs, in an error-queue message.
func TxStamp(oob []byte) (time.Time, bool) {
	const hdr = syscall.SizeofCmsghdr
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob[0:8]))
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		if l < hdr || l > len(oob) {
			break
		}
		if level == unix.SOL_SOCKET && typ == unix.SCM_TIMESTAMPING && l >= hdr+48 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdr:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8:]))
			if sec != 0 || nsec != 0 {
				return time.Unix(sec, nsec), true
			}
		}
		next := (l + 7) &^ 7
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return time.Time{}, false
}
