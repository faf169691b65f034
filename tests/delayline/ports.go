package main

import (
	"fmt"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"timegate/tests/kstamp"
)

// vnetHdrLen is struct virtio_net_hdr, which PACKET_VNET_HDR puts before every frame
// read and expects before every frame written.
const vnetHdrLen = 10

// ports is the line's Device: a packet socket on each of two links. Each socket sees
// every frame that arrives on its link (promiscuous: the frames are for the far side's
// hosts, not this namespace) and none that this process sends (PACKET_IGNORE_OUTGOING),
// with the kernel's receive stamp (SO_TIMESTAMPNS). The virtio header carries a
// frame's checksum state and segmentation across: a frame whose checksum the sender
// left to the link (CHECKSUM_PARTIAL on a veth) would otherwise arrive with a wrong
// one, and a TCP segment of 64 KiB would be too long for the far link.
type ports struct {
	fds  [2]int
	poll [2]unix.PollFd
	// One recvmsg's header, vector and control buffer, kept here so that a read
	// allocates nothing.
	msg unix.Msghdr
	iov unix.Iovec
	oob [64]byte
}

// openPorts opens the packet sockets on links a (port 0) and b (port 1).
func openPorts(a, b string) (*ports, error) {
	d := &ports{fds: [2]int{-1, -1}}
	for i, name := range []string{a, b} {
		fd, err := openPort(name)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		d.fds[i] = fd
		d.poll[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	return d, nil
}

func (d *ports) close() {
	for _, fd := range d.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openPort(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return -1, err
	}
	// Protocol 0 until bound: a packet socket made for ETH_P_ALL would take frames
	// from every link of the namespace until bind narrows it to one.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	opts := []struct {
		level, opt int
		name       string
	}{
		{unix.SOL_PACKET, unix.PACKET_VNET_HDR, "PACKET_VNET_HDR"},
		{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, "PACKET_IGNORE_OUTGOING"},
		{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, "SO_TIMESTAMPNS"},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("%s: %w", o.name, err)
		}
	}
	// The membership ends with the socket: nothing to undo on the link.
	mr := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("promiscuous: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind: %w", err)
	}
	return fd, nil
}

func (d *ports) Wait(timeout time.Duration) error {
	var ts *unix.Timespec
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	if _, err := unix.Ppoll(d.poll[:], ts, nil); err != nil && err != unix.EINTR {
		return err
	}
	return nil
}

func (d *ports) Read(port int, b []byte) (int, time.Time, error) {
	d.iov.Base = &b[0]
	d.iov.SetLen(len(b))
	d.msg.Iov = &d.iov
	d.msg.Iovlen = 1
	d.msg.Control = &d.oob[0]
	d.msg.SetControllen(len(d.oob))
	for {
		// MSG_TRUNC: the frame's whole length, so that a truncated one is known.
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(d.fds[port]), uintptr(unsafe.Pointer(&d.msg)), unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		switch errno {
		case 0:
			at, _ := kstamp.Time(d.oob[:d.msg.Controllen])
			return int(n), at, nil
		case unix.EAGAIN:
			return 0, time.Time{}, ErrNoPacket
		case unix.EINTR:
			continue
		}
		return 0, time.Time{}, errno
	}
}

func (d *ports) Write(port int, b []byte) error {
	_, err := unix.Write(d.fds[port], b)
	return err
}
