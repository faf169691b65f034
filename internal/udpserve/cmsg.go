//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"encoding/binary"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// The control messages of one datagram (cmsg(3)) on 64-bit Linux: a 16-octet
// header, then the data, each message padded to 8 octets.
//
//	+---------------------------+--------------+--------------+-------------+
//	| cmsg_len (8, incl. header)| level (4)    | type (4)     | data, pad 8 |
//	+---------------------------+--------------+--------------+-------------+
//
// What we read: SCM_TIMESTAMPNS (timespec: sec 8, nsec 8) or
// SCM_TIMESTAMPING (three of them, the first the software one), IP_PKTINFO
// (in_pktinfo: ifindex 4, spec_dst 4, addr 4) and IPV6_PKTINFO (in6_pktinfo:
// addr 16, ifindex 4).
const (
	cmsgHdrLen   = unix.SizeofCmsghdr
	timespecLen  = 16
	inPktinfoLen = unix.SizeofInet4Pktinfo
	in6PktLen    = unix.SizeofInet6Pktinfo

	// oobLen holds a timestamp (SCM_TIMESTAMPNS, or SCM_TIMESTAMPING on
	// kernels that cannot filter it, 64), an IPV6_PKTINFO and an
	// IP_PKTINFO (a dual-stack socket receiving IPv4 gets both pktinfo
	// forms): 64 + 40 + 32 octets, rounded up.
	oobLen = 144
	// replyOOBLen holds the pktinfo message a reply carries and the
	// request for its transmit timestamp.
	replyOOBLen = cmsgHdrLen + 24 + txStampLen
)

// control is what the kernel told us about one received datagram.
type control struct {
	rx time.Time // kernel receive time (SO_TIMESTAMPNS); zero when absent
	// local is the address to answer from: IP_PKTINFO's ipi_spec_dst (the
	// local address the kernel matched, which for a broadcast request is
	// the interface's own address) or else IPV6_PKTINFO's destination.
	local   netip.Addr
	ifindex uint32 // the interface it arrived on; 0 when unknown
}

// parseControl reads a datagram's control messages into c without
// allocating. Malformed or truncated messages end the walk; what was read
// before stays. c is the caller's (the worker keeps one), not a return
// value: copying the struct out and into putReplyControl again cost a
// plain reply about 40 instructions.
func parseControl(oob []byte, c *control) {
	*c = control{}
	var v4 netip.Addr // IP_PKTINFO wins over the IPv4-mapped IPV6_PKTINFO
	for len(oob) >= cmsgHdrLen {
		l := binary.NativeEndian.Uint64(oob[0:8])
		if l < cmsgHdrLen || l > uint64(len(oob)) {
			break
		}
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		data := oob[cmsgHdrLen:l]
		switch {
		case level == unix.SOL_SOCKET && (typ == unix.SCM_TIMESTAMPNS || typ == unix.SCM_TIMESTAMPING) && len(data) >= timespecLen:
			// SCM_TIMESTAMPING's software stamp is the first of its three.
			sec := int64(binary.NativeEndian.Uint64(data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(data[8:16]))
			c.rx = time.Unix(sec, nsec)
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= inPktinfoLen:
			v4 = netip.AddrFrom4([4]byte(data[4:8]))
			if c.ifindex == 0 {
				c.ifindex = binary.NativeEndian.Uint32(data[0:4])
			}
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= in6PktLen:
			c.local = netip.AddrFrom16([16]byte(data[0:16]))
			c.ifindex = binary.NativeEndian.Uint32(data[16:20])
		}
		next := (l + 7) &^ 7
		if next > uint64(len(oob)) {
			break
		}
		oob = oob[next:]
	}
	if v4.IsValid() {
		if c.local.Is4In6() || !c.local.IsValid() {
			c.local = v4
		}
	}
}

// putReplyControl writes into b (at least replyOOBLen octets) the pktinfo
// message that makes a reply leave from c.local, and out of the interface
// the request came in on when the address is link-local, and returns its
// length; 0 means "let the kernel choose" (nothing known, or a multicast
// destination we must not answer from). v6 is the socket's family: an
// AF_INET6 socket takes IPV6_PKTINFO, with an IPv4-mapped source for IPv4
// clients (Linux's ip_cmsg_send accepts it on dual-stack sockets).
func putReplyControl(b []byte, v6 bool, c *control) int {
	a := c.local
	if !a.IsValid() || a.IsMulticast() || a.IsUnspecified() {
		return 0
	}
	clear(b[:replyOOBLen])
	if !v6 {
		if !a.Is4() && !a.Is4In6() {
			return 0
		}
		l := cmsgHdrLen + inPktinfoLen
		putCmsgHdr(b, l, unix.IPPROTO_IP, unix.IP_PKTINFO)
		// ipi_ifindex stays 0: the route decides the way out, only the
		// source address is ours to fix (ipi_spec_dst).
		a4 := a.Unmap().As4()
		copy(b[cmsgHdrLen+4:], a4[:])
		return cmsgSpace(l)
	}
	l := cmsgHdrLen + in6PktLen
	putCmsgHdr(b, l, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO)
	a16 := a.As16() // IPv4 comes out IPv4-mapped
	copy(b[cmsgHdrLen:], a16[:])
	if a.IsLinkLocalUnicast() {
		// A link-local source address means nothing without its link.
		binary.NativeEndian.PutUint32(b[cmsgHdrLen+16:], c.ifindex)
	}
	return cmsgSpace(l)
}

func putCmsgHdr(b []byte, l, level, typ int) {
	binary.NativeEndian.PutUint64(b[0:8], uint64(l))
	binary.NativeEndian.PutUint32(b[8:12], uint32(level))
	binary.NativeEndian.PutUint32(b[12:16], uint32(typ))
}

func cmsgSpace(l int) int { return (l + 7) &^ 7 }

// sockaddrAddrPort decodes the sockaddr_in or sockaddr_in6 the kernel
// wrote as a datagram's source. The zone of a link-local source is not
// kept (netip would intern a string per datagram): the reply goes back to
// the raw sockaddr, scope ID included, and the responder needs the address
// only for its access and rate decisions.
func sockaddrAddrPort(b []byte) netip.AddrPort {
	if len(b) < 2 {
		return netip.AddrPort{}
	}
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case unix.AF_INET:
		if len(b) >= unix.SizeofSockaddrInet4 {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:4]))
		}
	case unix.AF_INET6:
		if len(b) >= unix.SizeofSockaddrInet6 {
			return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), binary.BigEndian.Uint16(b[2:4]))
		}
	}
	return netip.AddrPort{}
}
