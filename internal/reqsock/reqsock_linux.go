//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package reqsock

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"timegate/internal/sockstamp"
)

// Set is the request sockets of one owner goroutine (the engine's loop)
// and the epoll instance that watches them. Every method but Wait is the
// owner's; Wait belongs to one other goroutine, which it parks until a
// socket has something to read. Close is the owner's last call.
type Set struct {
	ep   *os.File // the epoll instance, non-blocking, watched by Go's poller
	eprc syscall.RawConn
	epfd uintptr // the owner's raw calls use the number: only it closes ep

	waitEv [1]unix.EpollEvent // Wait's report: a different goroutine from Ready's
	waitFn func(uintptr) bool
	events [16]unix.EpollEvent

	// recvmsg's header, kept so that a read allocates nothing.
	msg unix.Msghdr
	iov unix.Iovec
	oob [sockstamp.OOBSize]byte
	// The error queue's reports (transmit stamps) are read into their own
	// buffer: a cmsg of SCM_TIMESTAMPING with the sock_extended_err.
	errOOB [128]byte
}

// New makes an empty set.
func New() (*Set, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("reqsock: epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("reqsock: epoll: %w", err)
	}
	s := &Set{ep: os.NewFile(uintptr(epfd), "reqsock-epoll"), epfd: uintptr(epfd)}
	if s.eprc, err = s.ep.SyscallConn(); err != nil {
		s.ep.Close()
		return nil, fmt.Errorf("reqsock: epoll: %w", err)
	}
	s.waitFn = s.ready
	s.msg.Iov = &s.iov
	s.msg.Iovlen = 1
	return s, nil
}

// Open makes a non-blocking UDP socket connected to dst (the kernel then
// drops datagrams from anyone else), on a port of the kernel's choosing,
// with kernel receive and transmit stamps where the kernel gives them
// (txStamps says whether it gives the latter). It is not watched until
// Watch.
func (s *Set) Open(dst netip.AddrPort) (fd int, txStamps bool, err error) {
	sa, salen, family, err := sockaddr(dst)
	if err != nil {
		return -1, false, err
	}
	r, _, errno := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if errno != 0 {
		return -1, false, fmt.Errorf("reqsock: socket: %w", errno)
	}
	fd = int(r)
	// Without receive stamps Recv returns a zero time and the owner reads
	// its clock instead, as the net path does.
	_, txStamps = sockstamp.EnableRaw(r)
	if _, _, errno := unix.RawSyscall(unix.SYS_CONNECT, r, uintptr(sa), salen); errno != 0 {
		closeFD(fd)
		return -1, false, fmt.Errorf("reqsock: connect %s: %w", dst, errno)
	}
	return fd, txStamps, nil
}

// sockaddr is dst in the kernel's form. The zone of a link-local address
// names its interface.
func sockaddr(dst netip.AddrPort) (unsafe.Pointer, uintptr, int, error) {
	ip := dst.Addr().Unmap()
	port := dst.Port()
	if ip.Is4() {
		sa := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4()}
		putPort(&sa.Port, port)
		return unsafe.Pointer(sa), unix.SizeofSockaddrInet4, unix.AF_INET, nil
	}
	if !ip.Is6() {
		return nil, 0, 0, fmt.Errorf("reqsock: no address in %v", dst)
	}
	sa := &unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
	putPort(&sa.Port, port)
	if zone := ip.Zone(); zone != "" {
		if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
			sa.Scope_id = uint32(n)
		} else if ifi, err := net.InterfaceByName(zone); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		} else {
			return nil, 0, 0, fmt.Errorf("reqsock: zone of %v: %w", dst, err)
		}
	}
	return unsafe.Pointer(sa), unix.SizeofSockaddrInet6, unix.AF_INET6, nil
}

// putPort stores p in network order, as sockaddr_in's sin_port is.
func putPort(dst *uint16, p uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(p>>8), byte(p)
}

// Send writes pkt on fd.
func (s *Set) Send(fd int, pkt []byte) error {
	if len(pkt) == 0 {
		return nil
	}
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// TxTime empties fd's error queue and returns the last transmit stamp in
// it, if any. The queue is emptied every time: epoll reports a non-empty
// one (EPOLLERR) for as long as anything is left in it.
func (s *Set) TxTime(fd int) (time.Time, bool) {
	var last time.Time
	for {
		s.iov.Base, s.iov.Len = nil, 0
		s.msg.Control = &s.errOOB[0]
		s.msg.SetControllen(len(s.errOOB))
		s.msg.Name, s.msg.Namelen, s.msg.Flags = nil, 0, 0
		_, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&s.msg)), unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return last, !last.IsZero()
		}
		if t, ok := sockstamp.TxStamp(s.errOOB[:min(int(s.msg.Controllen), len(s.errOOB))]); ok {
			last = t // the last one queued is the last datagram's
		}
	}
}

// Watch adds fd to the set. Add it after the send, not before: a socket
// in an epoll set runs the set's wake-up on every report, and the
// transmit stamp's report would then wake a thread (Go's poller) while
// the request is on its way, when the machine should be quiet.
func (s *Set) Watch(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, s.epfd, unix.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if errno != 0 {
		return fmt.Errorf("reqsock: epoll_ctl: %w", errno)
	}
	return nil
}

// Release closes fd (which takes it out of the set).
func (s *Set) Release(fd int) { closeFD(fd) }

func closeFD(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// Recv reads one datagram from fd without waiting into buf, with its
// kernel receive stamp when the kernel gave one (rx is zero otherwise).
// errno is EAGAIN when nothing is queued.
func (s *Set) Recv(fd int, buf []byte) (n int, rx time.Time, errno syscall.Errno) {
	s.iov.Base = &buf[0]
	s.iov.SetLen(len(buf))
	s.msg.Control = &s.oob[0]
	s.msg.SetControllen(len(s.oob))
	s.msg.Name, s.msg.Namelen, s.msg.Flags = nil, 0, 0
	r, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&s.msg)), unix.MSG_DONTWAIT)
	if errno != 0 {
		return 0, time.Time{}, errno
	}
	rx, _ = sockstamp.Time(s.oob[:min(int(s.msg.Controllen), len(s.oob))])
	return int(r), rx, 0
}

// Ready appends the sockets with something to read (or an error-queue
// report) to dst, without waiting.
func (s *Set) Ready(dst []int) []int {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, s.epfd, uintptr(unsafe.Pointer(&s.events[0])), uintptr(len(s.events)), 0, 0, 0)
	if errno != 0 {
		return dst
	}
	for _, ev := range s.events[:n] {
		dst = append(dst, int(ev.Fd))
	}
	return dst
}

// Wait parks the calling goroutine until some socket of the set has
// something to read; it reports nothing about which (Ready does). It
// returns an error once Close was called. The set's sockets are
// level-triggered: Wait returns at once again until the owner has read
// what woke it.
func (s *Set) Wait() error { return s.eprc.Read(s.waitFn) }

// ready is Wait's test, made through Go's poller: a raw zero-timeout
// epoll_pwait (a wrapped one would wake sysmon; see udpserve's worker),
// false to park until the instance turns readable. A failed call parks
// too: returning would have the waiter and the owner spin on it.
func (s *Set) ready(fd uintptr) bool {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&s.waitEv[0])), 1, 0, 0, 0)
	return errno == 0 && n > 0
}

// Close closes the epoll instance, which ends Wait. The owner closes its
// sockets itself.
func (s *Set) Close() error { return s.ep.Close() }
