package main

import (
	"fmt"
	"net"
	"syscall"
)

// batch is a set of datagram buffers sent or received with one system call
// where the platform has sendmmsg/recvmmsg (Linux amd64 and arm64), one by
// one elsewhere. A load generator on one core spends most of its time in
// system calls: batching lets it outrun the server it measures.
type batch struct {
	bufs [][]byte // each of the size given to newBatch
	lens []int    // bytes to send, or received, per buffer
	sys  sysBatch // the platform's message headers
}

func newBatch(n, size int) *batch {
	b := &batch{bufs: make([][]byte, n), lens: make([]int, n)}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, size)
	}
	b.sys.init(b)
	return b
}

// udpBatcher sends and receives batches on one connected UDP socket through
// its syscall.RawConn, so that the runtime's poller still does the waiting
// (and read deadlines still work). The callbacks are bound once: nothing is
// allocated per batch.
type udpBatcher struct {
	rc    syscall.RawConn
	b     *batch
	n     int // messages to send in this call
	done  int // messages sent or received
	errno syscall.Errno
	write func(fd uintptr) bool
	read  func(fd uintptr) bool
}

func newUDPBatcher(c *net.UDPConn, b *batch) (*udpBatcher, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	u := &udpBatcher{rc: rc, b: b}
	u.write, u.read = u.doWrite, u.doRead
	return u, nil
}

// Send sends b.bufs[i][:b.lens[i]] for i < n and returns how many went out.
// A refused message (e.g. ECONNREFUSED after an ICMP port unreachable) ends
// the call; the caller counts the rest as send errors.
func (u *udpBatcher) Send(n int) (int, error) {
	u.n, u.done, u.errno = n, 0, 0
	if err := u.rc.Write(u.write); err != nil {
		return u.done, err
	}
	if u.errno != 0 {
		return u.done, u.errno
	}
	return u.done, nil
}

// Recv waits for at least one datagram and returns how many it read into
// b.bufs, with their lengths in b.lens.
func (u *udpBatcher) Recv() (int, error) {
	u.done, u.errno = 0, 0
	if err := u.rc.Read(u.read); err != nil {
		return 0, err
	}
	if u.errno != 0 {
		return 0, u.errno
	}
	return u.done, nil
}
