package udpserve

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// Listen opens n UDP sockets on addr (the zero Addr: every address,
// dual-stack) sharing one port, for n workers; with port 0 the first
// socket picks it and the others join it. Where SO_REUSEPORT is available
// (Linux) the kernel spreads the datagrams over the group by a hash of
// source and destination, so one client keeps one socket. Elsewhere n is
// taken as 1.
//
// rcvbuf, when positive, is each socket's receive buffer in bytes (see
// setRcvBuf; ReceiveBuffer reads back what the kernel granted); 0 leaves
// the kernel's default (net.core.rmem_default, about 200 small datagrams
// on Linux), which a worker kept off its core for a few milliseconds
// overflows at a rate far below what it answers.
//
// SO_REUSEPORT lets any process of the same user bind the port too and
// take a share of the requests: run timegate under its own user.
func Listen(ctx context.Context, addr netip.AddrPort, n, rcvbuf int) ([]*net.UDPConn, error) {
	n = max(1, n)
	if !reusePortSupported {
		n = 1
	}
	anyAddr := !addr.Addr().IsValid() || addr.Addr().IsUnspecified()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error { return prepare(rc, anyAddr) }}
	host := ""
	if addr.Addr().IsValid() {
		host = addr.Addr().String()
	}
	port := int(addr.Port())
	conns := make([]*net.UDPConn, 0, n)
	for range n {
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("udpserve: %w", err)
		}
		c := pc.(*net.UDPConn)
		conns = append(conns, c)
		if rcvbuf > 0 {
			if err := setRcvBuf(c, rcvbuf); err != nil {
				for _, c := range conns {
					c.Close()
				}
				return nil, err
			}
		}
		port = c.LocalAddr().(*net.UDPAddr).Port
	}
	return conns, nil
}

// prepare sets a socket up before it is bound: SO_REUSEPORT, and the
// control messages every datagram needs (enableControl), so that none
// queued between bind and the first read lacks its stamp or address.
func prepare(rc syscall.RawConn, anyAddr bool) error {
	enableControl(rc, anyAddr)
	if !reusePortSupported {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setReusePort(fd) }); err != nil {
		return err
	}
	return serr
}
