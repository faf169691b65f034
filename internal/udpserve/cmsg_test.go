//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// appendCmsg appends one control message as the kernel lays it out.
func appendCmsg(b []byte, level, typ int, data []byte) []byte {
	var h [cmsgHdrLen]byte
	putCmsgHdr(h[:], cmsgHdrLen+len(data), level, typ)
	b = append(b, h[:]...)
	b = append(b, data...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

func timespec(t time.Time) []byte {
	var d [timespecLen]byte
	binary.NativeEndian.PutUint64(d[0:], uint64(t.Unix()))
	binary.NativeEndian.PutUint64(d[8:], uint64(t.Nanosecond()))
	return d[:]
}

func inPktinfo(ifindex uint32, spec, dst netip.Addr) []byte {
	var d [inPktinfoLen]byte
	binary.NativeEndian.PutUint32(d[0:], ifindex)
	s, a := spec.As4(), dst.As4()
	copy(d[4:], s[:])
	copy(d[8:], a[:])
	return d[:]
}

func in6Pktinfo(ifindex uint32, dst netip.Addr) []byte {
	var d [in6PktLen]byte
	a := dst.As16()
	copy(d[:], a[:])
	binary.NativeEndian.PutUint32(d[16:], ifindex)
	return d[:]
}

func TestParseControl(t *testing.T) {
	at := time.Date(2027, 3, 4, 5, 6, 7, 890123456, time.UTC)
	v4 := netip.MustParseAddr("127.0.0.3")
	bcast := netip.MustParseAddr("192.0.2.255")
	own := netip.MustParseAddr("192.0.2.7")
	ll := netip.MustParseAddr("fe80::1")
	for _, tc := range []struct {
		name string
		oob  []byte
		want control
	}{
		{"empty", nil, control{}},
		{"stamp only", appendCmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(at)), control{rx: at}},
		{"IPv4 socket", appendCmsg(appendCmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(at)),
			unix.IPPROTO_IP, unix.IP_PKTINFO, inPktinfo(1, v4, v4)), control{rx: at, local: v4, ifindex: 1}},
		// A broadcast request is answered from the interface's address,
		// which the kernel gives as ipi_spec_dst.
		{"broadcast", appendCmsg(nil, unix.IPPROTO_IP, unix.IP_PKTINFO, inPktinfo(2, own, bcast)), control{local: own, ifindex: 2}},
		// A dual-stack socket gets both forms for IPv4: spec_dst wins.
		{"dual-stack IPv4", appendCmsg(appendCmsg(nil, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, in6Pktinfo(2, netip.AddrFrom16(bcast.As16()))),
			unix.IPPROTO_IP, unix.IP_PKTINFO, inPktinfo(2, own, bcast)), control{local: own, ifindex: 2}},
		{"IPv6 link-local", appendCmsg(nil, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, in6Pktinfo(5, ll)), control{local: ll, ifindex: 5}},
		{"truncated pktinfo", appendCmsg(nil, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, make([]byte, 8)), control{}},
		{"length past the end", func() []byte {
			b := appendCmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(at))
			binary.NativeEndian.PutUint64(b, 200)
			return b
		}(), control{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parsedControl(tc.oob)
			if !got.rx.Equal(tc.want.rx) || got.local != tc.want.local || got.ifindex != tc.want.ifindex {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The control message a reply carries says what a received one said: the
// source the reply must leave from, and the link for a link-local one.
func TestReplyControlRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		v6      bool
		local   string
		ifindex uint32
		want    bool   // a message at all
		wantIf  uint32 // the interface it names
	}{
		{false, "127.0.0.3", 1, true, 0},
		{true, "127.0.0.3", 1, true, 0}, // IPv4-mapped on a dual-stack socket
		{true, "2001:db8::5", 3, true, 0},
		{true, "fe80::1", 3, true, 3},
		{true, "ff02::101", 3, false, 0}, // never answer from a multicast address
		{false, "::1", 1, false, 0},      // IPv6 on an IPv4 socket cannot be
		{true, "::", 1, false, 0},
	} {
		var b [replyOOBLen]byte
		n := putReplyControl(b[:], tc.v6, &control{local: netip.MustParseAddr(tc.local), ifindex: tc.ifindex})
		if (n > 0) != tc.want {
			t.Errorf("%s (v6 %v): %d octets", tc.local, tc.v6, n)
			continue
		}
		if n == 0 {
			continue
		}
		got := parsedControl(b[:n])
		if got.local.Unmap() != netip.MustParseAddr(tc.local) || got.ifindex != tc.wantIf {
			t.Errorf("%s (v6 %v): read back %+v", tc.local, tc.v6, got)
		}
	}
	if n := putReplyControl(make([]byte, replyOOBLen), true, &control{}); n != 0 {
		t.Errorf("no local address: %d octets", n)
	}
}

func TestSockaddrAddrPort(t *testing.T) {
	var s4 [unix.SizeofSockaddrInet6]byte
	binary.NativeEndian.PutUint16(s4[0:], unix.AF_INET)
	binary.BigEndian.PutUint16(s4[2:], 123)
	copy(s4[4:], []byte{192, 0, 2, 1})
	if got := sockaddrAddrPort(s4[:unix.SizeofSockaddrInet4]); got != netip.MustParseAddrPort("192.0.2.1:123") {
		t.Errorf("sockaddr_in: %v", got)
	}
	var s6 [unix.SizeofSockaddrInet6]byte
	binary.NativeEndian.PutUint16(s6[0:], unix.AF_INET6)
	binary.BigEndian.PutUint16(s6[2:], 4460)
	a := netip.MustParseAddr("2001:db8::1").As16()
	copy(s6[8:], a[:])
	if got := sockaddrAddrPort(s6[:]); got != netip.MustParseAddrPort("[2001:db8::1]:4460") {
		t.Errorf("sockaddr_in6: %v", got)
	}
	for _, bad := range [][]byte{nil, {1}, s6[:20], s4[:8]} {
		if got := sockaddrAddrPort(bad); got.IsValid() {
			t.Errorf("%x: %v", bad, got)
		}
	}
}

// FuzzParseControl: any control buffer parses without panicking, and a
// source address it yields makes a reply message that reads back the same.
func FuzzParseControl(f *testing.F) {
	f.Add(appendCmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(time.Unix(1e9, 5))))
	f.Add(appendCmsg(nil, unix.IPPROTO_IP, unix.IP_PKTINFO, inPktinfo(1, netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.2"))))
	f.Add(appendCmsg(nil, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, in6Pktinfo(4, netip.MustParseAddr("fe80::2"))))
	f.Fuzz(func(t *testing.T, oob []byte) {
		c := parsedControl(oob)
		for _, v6 := range []bool{false, true} {
			var b [replyOOBLen]byte
			n := putReplyControl(b[:], v6, &c)
			if n > replyOOBLen {
				t.Fatalf("%d octets", n)
			}
			if n > 0 {
				if back := parsedControl(b[:n]); back.local.Unmap() != c.local.Unmap() {
					t.Fatalf("%v read back as %v", c.local, back.local)
				}
			}
		}
	})
}

// parsedControl is parseControl's result as a value.
func parsedControl(oob []byte) control {
	var c control
	parseControl(oob, &c)
	return c
}
