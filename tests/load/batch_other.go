//go:build !(linux && (amd64 || arm64))

package main

import "syscall"

// sysBatch is empty: without sendmmsg/recvmmsg each datagram is its own
// system call.
type sysBatch struct{}

func (*sysBatch) init(*batch) {}

func (u *udpBatcher) doWrite(fd uintptr) bool {
	for u.done < u.n {
		b := u.b
		_, err := syscall.Write(int(fd), b.bufs[u.done][:b.lens[u.done]])
		if err == syscall.EAGAIN {
			return false
		}
		if err != nil {
			u.errno, _ = err.(syscall.Errno)
			return true
		}
		u.done++
	}
	return true
}

func (u *udpBatcher) doRead(fd uintptr) bool {
	n, err := syscall.Read(int(fd), u.b.bufs[0])
	if err == syscall.EAGAIN {
		return false
	}
	if err != nil {
		u.errno, _ = err.(syscall.Errno)
		return true
	}
	u.b.lens[0], u.done = n, 1
	return true
}
