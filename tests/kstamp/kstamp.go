// Package kstamp reads kernel timestamps out of the control messages of
// recvmsg, for the measuring tools under tests/ (xlprobe, srvprobe,
// txcost). It is not the daemon's parser (internal/udpserve has that, with
// its fuzz target): these tools only read their own sockets' messages.
package kstamp

import (
	"encoding/binary"
	"time"

	"golang.org/x/sys/unix"
)

const hdrLen = 16 // struct cmsghdr on 64-bit Linux

// find returns the data of the first control message of level and type in
// oob.
func find(oob []byte, level, typ int32) ([]byte, bool) {
	for len(oob) >= hdrLen {
		l := int(binary.NativeEndian.Uint64(oob))
		if l < hdrLen || l > len(oob) {
			break
		}
		if int32(binary.NativeEndian.Uint32(oob[8:])) == level && int32(binary.NativeEndian.Uint32(oob[12:])) == typ {
			return oob[hdrLen:l], true
		}
		n := (l + 7) &^ 7
		if n > len(oob) {
			break
		}
		oob = oob[n:]
	}
	return nil, false
}

// Time returns the software timestamp in oob: SCM_TIMESTAMPNS, or the
// first timespec of SCM_TIMESTAMPING (receive stamps, and transmit stamps
// read from the error queue).
func Time(oob []byte) (time.Time, bool) {
	d, ok := find(oob, unix.SOL_SOCKET, unix.SCM_TIMESTAMPING)
	if !ok {
		d, ok = find(oob, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS)
	}
	if !ok || len(d) < 16 {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.NativeEndian.Uint64(d)), int64(binary.NativeEndian.Uint64(d[8:]))), true
}

// ErrID returns the ee_data of the sock_extended_err that comes with an
// error-queue timestamp on an IPv4 socket: the datagram's number under
// SOF_TIMESTAMPING_OPT_ID.
func ErrID(oob []byte) (uint32, bool) {
	d, ok := find(oob, unix.IPPROTO_IP, unix.IP_RECVERR)
	if !ok || len(d) < 16 {
		return 0, false
	}
	return binary.NativeEndian.Uint32(d[12:]), true
}

// TxRequest is the control message that asks the kernel for one
// datagram's software transmit timestamp (SO_TIMESTAMPING with
// SOF_TIMESTAMPING_TX_SOFTWARE).
func TxRequest() []byte {
	b := make([]byte, 24)
	binary.NativeEndian.PutUint64(b, 20)
	binary.NativeEndian.PutUint32(b[8:], unix.SOL_SOCKET)
	binary.NativeEndian.PutUint32(b[12:], unix.SO_TIMESTAMPING)
	binary.NativeEndian.PutUint32(b[16:], unix.SOF_TIMESTAMPING_TX_SOFTWARE)
	return b
}
