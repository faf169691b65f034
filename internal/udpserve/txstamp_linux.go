//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"encoding/binary"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"timegate/ntp"
)

// Kernel transmit timestamps (SO_TIMESTAMPING), for interleaved mode: a
// reply that an interleaved request may follow asks for one with a control
// message of its own (Linux 4.13 and later), as chronyd's server sockets
// do, so plain replies cost the kernel nothing more. The kernel loops the
// sent packet back to the socket's error queue with the time it reached
// the device driver; the worker reads the queue after each send that asked
// for stamps, and when its socket has nothing else to read.

// sofRxFilter is SOF_TIMESTAMPING_OPT_RX_FILTER (recent kernels): with it the
// socket's SOFTWARE reporting flag applies to the error queue only, and
// received datagrams keep their SO_TIMESTAMPNS stamp alone. Older kernels
// refuse it; the socket then takes its receive stamps from SO_TIMESTAMPING
// too (a 48-octet control message instead of 16).
const sofRxFilter = 0x20000

// enableTxStamps turns kernel transmit timestamps on for fd and reports
// whether they are; when the receive stamps had to move to SO_TIMESTAMPING
// SO_TIMESTAMPNS is turned off, so that each datagram carries one stamp.
func enableTxStamps(fd int) bool { return enableTxStampsFilter(fd, true) }

// enableTxStampsFilter is enableTxStamps, trying the filter only when
// filter is set (false: the older kernels' way, for tests on new ones).
func enableTxStampsFilter(fd int, filter bool) bool {
	if filter && unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, unix.SOF_TIMESTAMPING_SOFTWARE|sofRxFilter) == nil {
		return true
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING,
		unix.SOF_TIMESTAMPING_SOFTWARE|unix.SOF_TIMESTAMPING_RX_SOFTWARE) != nil {
		return false
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 0)
	return true
}

// txStampLen is the control message that asks for one datagram's software
// transmit timestamp: SO_TIMESTAMPING with a 4-octet flags word.
const txStampLen = cmsgHdrLen + 8

// putTxStampControl writes that message into b (at least txStampLen
// octets) and returns its length.
func putTxStampControl(b []byte) int {
	clear(b[:txStampLen])
	putCmsgHdr(b, cmsgHdrLen+4, unix.SOL_SOCKET, unix.SO_TIMESTAMPING)
	binary.NativeEndian.PutUint32(b[cmsgHdrLen:], unix.SOF_TIMESTAMPING_TX_SOFTWARE)
	return txStampLen
}

// The error queue is read in batches of eqBatch into buffers long enough
// for every header up to and including the NTP header (the rest of the
// packet is cut off, MSG_TRUNC); eqOOBLen holds SCM_TIMESTAMPING (64
// octets) and IP(V6)_RECVERR with its offender address (64).
const (
	eqBatch  = 16
	eqBufLen = 256
	eqOOBLen = 128
)

// errq is a worker's memory for reading its error queue, allocated with
// its batch.
type errq struct {
	hdr [eqBatch]mmsghdr
	iov [eqBatch]unix.Iovec
	buf [eqBatch][eqBufLen]byte
	oob [eqBatch][eqOOBLen]byte
}

func (q *errq) init() {
	for i := range eqBatch {
		q.iov[i].Base = &q.buf[i][0]
		q.iov[i].SetLen(eqBufLen)
		q.hdr[i].hdr.Iov = &q.iov[i]
		q.hdr[i].hdr.Iovlen = 1
		q.hdr[i].hdr.Control = &q.oob[i][0]
	}
}

// drainErrQueue reads the transmit timestamps queued on fd and hands each
// to the responder. It stops when the queue is empty; a queue left
// unread would hold receive-buffer memory that requests need.
func (w *worker) drainErrQueue(fd uintptr) {
	q := &w.b.eq
	resp := w.s.Responder()
	for {
		for i := range eqBatch {
			h := &q.hdr[i].hdr
			h.Controllen = eqOOBLen
			h.Flags = 0
			h.Name, h.Namelen = nil, 0
		}
		r, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&q.hdr[0])), eqBatch,
			unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			w.txWanted = 0
			return
		}
		n := int(r)
		for i := range n {
			h := &q.hdr[i]
			tx, ok := parseTxStamp(q.oob[i][:min(h.hdr.Controllen, eqOOBLen)])
			if !ok {
				continue
			}
			p := loopedPayload(q.buf[i][:min(int(h.len), eqBufLen)])
			switch {
			case len(p) < ntp.HeaderLen:
			case w.probe.match(binary.BigEndian.Uint64(p[40:48]), tx):
				w.cnt.storeLead(&w.probe.est)
				w.cnt.leadProbes.Add(1)
			case resp.KernelTransmit(p, tx):
				w.cnt.txStamps.Add(1)
			}
		}
		w.txWanted = max(0, w.txWanted-n)
		if n < eqBatch {
			return
		}
	}
}

// parseTxStamp finds the software timestamp (the first of the three
// timespecs of SCM_TIMESTAMPING) of an error-queue message, and checks
// that the message says it is a timestamp (sock_extended_err with origin
// SO_EE_ORIGIN_TIMESTAMPING) when it says anything.
func parseTxStamp(oob []byte) (time.Time, bool) {
	var ts time.Time
	stamp := true
	for len(oob) >= cmsgHdrLen {
		l := binary.NativeEndian.Uint64(oob[0:8])
		if l < cmsgHdrLen || l > uint64(len(oob)) {
			break
		}
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		data := oob[cmsgHdrLen:l]
		switch {
		case level == unix.SOL_SOCKET && typ == unix.SCM_TIMESTAMPING && len(data) >= 3*timespecLen:
			sec := int64(binary.NativeEndian.Uint64(data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(data[8:16]))
			if sec != 0 || nsec != 0 {
				ts = time.Unix(sec, nsec)
			}
		case (level == unix.IPPROTO_IP && typ == unix.IP_RECVERR || level == unix.IPPROTO_IPV6 && typ == unix.IPV6_RECVERR) &&
			len(data) >= 16: // struct sock_extended_err
			stamp = data[4] == unix.SO_EE_ORIGIN_TIMESTAMPING
		}
		next := (l + 7) &^ 7
		if next > uint64(len(oob)) {
			break
		}
		oob = oob[next:]
	}
	return ts, stamp && !ts.IsZero()
}
