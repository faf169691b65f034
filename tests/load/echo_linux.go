//go:build linux && (amd64 || arm64)

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// echoBatch is how many datagrams the echo server takes per recvmmsg, as
// timegate's workers do.
const echoBatch = 64

type echoMsg struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// echoServer is the practical ceiling of a Go NTP server on one core: the
// same batched system calls as timegate's edge (recvmmsg, then sendmmsg
// back to each sender), and for work only what makes a request a reply the
// load tool accepts (mode 4, a stratum, the nonce copied to the origin).
// No parsing, no policy, no timestamps, no counters. Raw system calls, as
// timegate's workers make them (see udpserve's worker_linux.go).
type echoServer struct {
	rc         syscall.RawConn
	msgs       [echoBatch]echoMsg
	iovs       [echoBatch]unix.Iovec
	names      [echoBatch][unix.SizeofSockaddrInet6]byte
	bufs       [echoBatch][recvBufSize]byte
	got, sent  int
	errno      syscall.Errno
	read, send func(fd uintptr) bool
}

// runEcho serves on cfg.Target until ctx ends or cfg.Duration passes.
func runEcho(ctx context.Context, cfg Config, log io.Writer) error {
	target, err := loopbackTarget(cfg.Target)
	if err != nil {
		return err
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(target))
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	// The kernel's default receive buffer, as timegate and chronyd have:
	// a larger queue would trade loss for latency and skew the comparison.
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	context.AfterFunc(ctx, func() { c.Close() })
	e := &echoServer{}
	if e.rc, err = c.SyscallConn(); err != nil {
		return err
	}
	e.read, e.send = e.doRead, e.doSend
	for i := range e.msgs {
		e.iovs[i].Base = &e.bufs[i][0]
		e.msgs[i].hdr.Iov, e.msgs[i].hdr.Iovlen = &e.iovs[i], 1
		e.msgs[i].hdr.Name = &e.names[i][0]
	}
	fmt.Fprintf(log, "echo: serving %v for at most %v\n", c.LocalAddr(), cfg.Duration)
	for {
		if err := e.rc.Read(e.read); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for i := range e.got {
			b := e.bufs[i][:e.msgs[i].len]
			if len(b) >= ntpLen {
				b[0] = b[0]&^7 | modeServer
				b[offStratum] = 1
				copy(b[offOrigin:offOrigin+8], b[offTransmit:offTransmit+8])
			}
			e.iovs[i].SetLen(len(b))
		}
		e.sent = 0
		if err := e.rc.Write(e.send); err != nil {
			return nil
		}
	}
}

func (e *echoServer) doRead(fd uintptr) bool {
	for i := range e.msgs {
		e.iovs[i].SetLen(recvBufSize)
		e.msgs[i].hdr.Namelen = unix.SizeofSockaddrInet6
	}
	r, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&e.msgs[0])), echoBatch, unix.MSG_DONTWAIT, 0, 0)
	for errno == unix.EINTR {
		r, _, errno = unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&e.msgs[0])), echoBatch, unix.MSG_DONTWAIT, 0, 0)
	}
	if errno == unix.EAGAIN {
		return false
	}
	e.got, e.errno = 0, errno
	if errno == 0 {
		e.got = int(r)
	}
	return true
}

func (e *echoServer) doSend(fd uintptr) bool {
	for e.sent < e.got {
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&e.msgs[e.sent])), uintptr(e.got-e.sent), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			e.sent += int(r)
		case unix.EAGAIN:
			return false
		default:
			e.sent++ // skip the message the kernel refused
		}
	}
	return true
}
