//go:build linux && (amd64 || arm64)

package main

import (
	"syscall"
	"unsafe"
)

// mmsghdr is struct mmsghdr of <sys/socket.h> on 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

type sysBatch struct {
	hdrs []mmsghdr
	iovs []syscall.Iovec
}

func (s *sysBatch) init(b *batch) {
	s.hdrs = make([]mmsghdr, len(b.bufs))
	s.iovs = make([]syscall.Iovec, len(b.bufs))
	for i := range b.bufs {
		s.iovs[i].Base = &b.bufs[i][0]
		s.hdrs[i].hdr.Iov = &s.iovs[i]
		s.hdrs[i].hdr.Iovlen = 1
	}
}

// sendmmsg sends b.bufs[i][:b.lens[i]] for from <= i < to on fd (connected).
func sendmmsg(fd uintptr, b *batch, from, to int, flags int) (int, syscall.Errno) {
	for i := from; i < to; i++ {
		b.sys.iovs[i].Len = uint64(b.lens[i])
	}
	r, _, errno := syscall.Syscall6(sysSendmmsg, fd, uintptr(unsafe.Pointer(&b.sys.hdrs[from])), uintptr(to-from), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), 0
}

// recvmmsg reads up to len(b.bufs) datagrams without blocking.
func recvmmsg(fd uintptr, b *batch) (int, syscall.Errno) {
	for i := range b.bufs {
		b.sys.iovs[i].Len = uint64(len(b.bufs[i]))
		b.sys.hdrs[i].hdr.Flags = 0
	}
	r, _, errno := syscall.Syscall6(sysRecvmmsg, fd, uintptr(unsafe.Pointer(&b.sys.hdrs[0])), uintptr(len(b.bufs)), syscall.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	for i := range int(r) {
		b.lens[i] = int(b.sys.hdrs[i].len)
	}
	return int(r), 0
}

func (u *udpBatcher) doWrite(fd uintptr) bool {
	for u.done < u.n {
		k, errno := sendmmsg(fd, u.b, u.done, u.n, syscall.MSG_DONTWAIT)
		if errno == syscall.EAGAIN {
			return false // the poller waits for room, then calls again
		}
		if errno != 0 {
			u.errno = errno
			return true
		}
		u.done += k
	}
	return true
}

func (u *udpBatcher) doRead(fd uintptr) bool {
	k, errno := recvmmsg(fd, u.b)
	if errno == syscall.EAGAIN {
		return false
	}
	u.done, u.errno = k, errno
	return true
}

// writeRaw sends the batch on a blocking raw socket.
func writeRaw(fd int, b *batch, n int) (int, error) {
	done := 0
	for done < n {
		k, errno := sendmmsg(uintptr(fd), b, done, n, 0)
		if errno != 0 {
			return done, errno
		}
		done += k
	}
	return done, nil
}
