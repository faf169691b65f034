//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"timegate/ntp"
)

// serve runs a Server with n sockets on addr and returns its port.
func serve(t *testing.T, addr netip.Addr, n int) (uint16, *Stats) {
	t.Helper()
	conns, err := Listen(context.Background(), netip.AddrPortFrom(addr, 0), n, 0)
	if err != nil {
		t.Skipf("cannot listen on %v: %v", addr, err) // e.g. no IPv6 in this namespace
	}
	if len(conns) != n {
		t.Fatalf("%d sockets, want %d", len(conns), n)
	}
	st := &ntp.ServedState{Stratum: 3, RefID: 0x7f7f0101}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	stats := &Stats{}
	srv := &Server{Conns: conns, Responder: func() *ntp.Responder { return resp }, Stats: stats, Log: zaptest.NewLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return uint16(conns[0].LocalAddr().(*net.UDPAddr).Port), stats
}

// settled waits (at most 2 s) for the workers to count replied replies: a
// worker counts a reply when sendmmsg returns, which may be after the
// client has read it.
func settled(st *Stats, replied uint64) Snapshot {
	deadline := time.Now().Add(2 * time.Second)
	s := st.Snapshot()
	for s.Replied < replied && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		s = st.Snapshot()
	}
	return s
}

// ask sends one request from c to dst and returns the reply's source and
// the reply, checked against the request.
func ask(t *testing.T, c *net.UDPConn, dst netip.AddrPort, nonce uint64) (netip.AddrPort, ntp.Sample) {
	t.Helper()
	t1 := time.Now()
	if _, err := c.WriteToUDPAddrPort(ntp.ClientRequest(nil, 4, 3, ntp.Time64(nonce)), dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("to %v: %v", dst, err)
	}
	s, err := ntp.CheckReply(buf[:n], 4, ntp.Time64(nonce), t1, time.Now())
	if err != nil {
		t.Fatalf("to %v: %v", dst, err)
	}
	return from, s
}

// TestReplyFromDestinationAddress: issue 13 item 5. Every address of
// 127.0.0.0/8 is local, so a wildcard socket receives requests sent to
// 127.0.0.2 and 127.0.0.3; without IP_PKTINFO the kernel would answer
// from 127.0.0.1, the address nearest the client. Both an IPv4 socket
// and a dual-stack one (IPv4-mapped IPV6_PKTINFO) are checked, and ::1.
func TestReplyFromDestinationAddress(t *testing.T) {
	for _, tc := range []struct {
		name string
		bind netip.Addr
		to   []string
	}{
		{"IPv4 wildcard", netip.IPv4Unspecified(), []string{"127.0.0.2", "127.0.0.3", "127.0.0.1"}},
		{"dual-stack wildcard", netip.Addr{}, []string{"127.0.0.2", "127.0.0.3", "::1"}},
		// Bound to one address, a socket needs no pktinfo: the bound
		// address is the source.
		{"bound to a secondary address", netip.MustParseAddr("127.0.0.3"), []string{"127.0.0.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, stats := serve(t, tc.bind, 2)
			for i, to := range tc.to {
				dst := netip.AddrPortFrom(netip.MustParseAddr(to), port)
				network, local := "udp4", "127.0.0.1:0"
				if dst.Addr().Is6() {
					network, local = "udp6", "[::1]:0"
				}
				c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(local)))
				if err != nil {
					t.Skipf("%s: %v", local, err)
				}
				defer c.Close()
				from, s := ask(t, c, dst, uint64(0xabcdef00+i))
				if from.Addr().Unmap() != dst.Addr() || from.Port() != port {
					t.Errorf("request to %v answered from %v", dst, from)
				}
				if s.Header.Stratum != 3 {
					t.Errorf("stratum %d", s.Header.Stratum)
				}
			}
			if s := settled(stats, uint64(len(tc.to))); s.Replied != uint64(len(tc.to)) {
				t.Errorf("replied %d", s.Replied)
			}
		})
	}
}

// TestBatchStampsEveryDatagram: bursts that recvmmsg takes several at a
// time each get their own kernel receive time, between their send and the
// arrival of their reply, and every reply goes to its own request.
func TestBatchStampsEveryDatagram(t *testing.T) {
	port, stats := serve(t, netip.AddrFrom4([4]byte{127, 0, 0, 1}), 1)
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const rounds, burst = 4, 48 // a burst stays well inside the socket buffers
	buf := make([]byte, 2048)
	for r := range rounds {
		sentAt := map[ntp.Time64]time.Time{}
		for i := range burst {
			nonce := ntp.Time64(uint64(r)<<32 | uint64(i) | 1<<63)
			sentAt[nonce] = time.Now()
			if _, err := c.WriteToUDPAddrPort(ntp.ClientRequest(nil, 4, 3, nonce), dst); err != nil {
				t.Fatal(err)
			}
		}
		for range burst {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("round %d: %v (%d unanswered)", r, err, len(sentAt))
			}
			got := time.Now().Add(time.Microsecond)
			p, err := ntp.Parse(buf[:n])
			if err != nil {
				t.Fatal(err)
			}
			t1, ok := sentAt[p.Header.Origin]
			if !ok {
				t.Fatalf("reply to an unknown or repeated request %x", p.Header.Origin)
			}
			delete(sentAt, p.Header.Origin)
			rx, tx := p.Header.Receive.Time(t1), p.Header.Transmit.Time(t1)
			if rx.Before(t1.Add(-time.Microsecond)) || tx.Before(rx) || tx.After(got) {
				t.Fatalf("stamps rx %v tx %v outside [%v, %v]", rx, tx, t1, got)
			}
		}
	}
	if s := settled(stats, rounds*burst); s.Received != rounds*burst || s.Replied != rounds*burst || s.SendErrors != 0 {
		t.Errorf("counters %+v", s)
	}
}

// TestWorkerAllocatesNothing: answering a datagram and sending the reply
// allocates nothing (the request is written into the worker's batch as
// recvmmsg would, with a kernel stamp and an IP_PKTINFO).
func TestWorkerAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	st := &ntp.ServedState{Stratum: 3}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	w, srv, _ := testWorker(t, resp, ntp.ClientRequest(nil, 4, 3, 0x1234))
	b := w.b
	lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	oob := appendCmsg(appendCmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(time.Now())),
		unix.IPPROTO_IP, unix.IP_PKTINFO, inPktinfo(1, lo, lo))
	b.rhdr[0].hdr.Controllen = uint64(copy(b.oob[0][:], oob))
	// Few enough that the client's socket buffer holds every reply.
	allocs := testing.AllocsPerRun(50, func() {
		w.handle(resp, 0)
		w.flush()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request", allocs)
	}
	if s := srv.Stats.Snapshot(); s.Replied != 51 || s.SendErrors != 0 {
		t.Errorf("counters %+v", s)
	}
}

// The worker writes a plain reply's transmit timestamp again just before
// sendmmsg: the reply that leaves carries the clock read at the flush, not
// the one read while the reply was built (or, with EdgeRestamps, none).
func TestWorkerRestampsPlainReplies(t *testing.T) {
	for _, edge := range []bool{false, true} {
		t.Run(map[bool]string{false: "responder stamps", true: "EdgeRestamps"}[edge], func(t *testing.T) {
			testWorkerRestamps(t, edge)
		})
	}
}

func testWorkerRestamps(t *testing.T, edge bool) {
	clock := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	st := &ntp.ServedState{Stratum: 3}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }, Now: func() time.Time { return clock }, EdgeRestamps: edge}
	w, _, client := testWorker(t, resp, ntp.ClientRequest(nil, 4, 3, 0x1234))
	w.handle(resp, 0)
	clock = clock.Add(7 * time.Microsecond) // the batch's work before the send
	w.flush()
	client.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 128)
	n, err := client.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ntp.DecodeHeader(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	if want := ntp.Time64From(clock) &^ 1; h.Transmit != want {
		t.Fatalf("transmit %v, want the flush's %v", h.Transmit.Time(clock), clock)
	}
	if h.Receive.Time(clock).After(h.Transmit.Time(clock)) {
		t.Fatal("receive after transmit")
	}
}

// testWorker is a worker on a loopback socket with its responder, and a
// client socket whose request stands in the worker's batch as recvmmsg would
// have left it (no control messages; a test adds its own).
func testWorker(t *testing.T, resp *ntp.Responder, req []byte) (*worker, *Server, *net.UDPConn) {
	t.Helper()
	conns, err := Listen(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conns[0].Close() })
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	srv := &Server{Conns: conns, Responder: func() *ntp.Responder { return resp }, Stats: &Stats{}, Log: zaptest.NewLogger(t)}
	w, err := newWorker(srv, conns[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
	b := w.b
	b.rhdr[0].len = uint32(copy(b.buf[0][:], req))
	from := client.LocalAddr().(*net.UDPAddr)
	binary.NativeEndian.PutUint16(b.name[0][0:], unix.AF_INET)
	binary.BigEndian.PutUint16(b.name[0][2:], uint16(from.Port))
	copy(b.name[0][4:], from.IP.To4())
	b.rhdr[0].hdr.Namelen = unix.SizeofSockaddrInet4
	b.rhdr[0].hdr.Controllen = 0
	return w, srv, client
}

// A worker's socket must not stay in Go's epoll set (detach): the poller's
// wake-up callback would run between a reply's transmit timestamp and its
// arrival. It is watched only by the worker's own epoll instance, and
// there only while the worker waits. Every epoll instance of the process
// is read from /proc/self/fdinfo.
func TestWorkerSocketOutsidePoller(t *testing.T) {
	resp := &ntp.Responder{State: func() *ntp.ServedState { return &ntp.ServedState{Stratum: 2} }}
	w, srv, client := testWorker(t, resp, ntp.ClientRequest(nil, 4, 3, 1))
	ino := func(rc syscall.RawConn) uint64 {
		var st unix.Stat_t
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = unix.Fstat(int(fd), &st) }); cerr != nil || err != nil {
			t.Fatal(cerr, err)
		}
		return st.Ino
	}
	crc, err := client.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sock unix.Stat_t
	if err := unix.Fstat(int(w.fd), &sock); err != nil {
		t.Fatal(err)
	}
	var own int
	w.eprc.Control(func(fd uintptr) { own = int(fd) })
	if watchers := epollTargets(t); len(watchers[ino(crc)]) == 0 {
		t.Fatal("the client's net.UDPConn is not seen in the poller's epoll set: the check would prove nothing")
	} else if len(watchers[sock.Ino]) != 0 {
		t.Fatalf("the worker's socket is in epoll sets %v before it ever waited", watchers[sock.Ino])
	}

	// A datagram is queued; the wait reports it at once and takes the
	// socket out of the worker's own epoll instance again.
	if _, err := client.WriteToUDPAddrPort(ntp.ClientRequest(nil, 4, 3, 2), srv.Conns[0].LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	if !w.wait(unix.EPOLLIN) {
		t.Fatal("wait was interrupted")
	}
	if watchers := epollTargets(t)[sock.Ino]; len(watchers) != 0 {
		t.Fatalf("after the wait the worker's socket is still watched by %+v (its own epoll instance is descriptor %d)", watchers, own)
	}
	if n, errno := w.recv(); errno != 0 || n != 1 {
		t.Fatalf("recv after the wait: %d datagrams, errno %v", n, errno)
	}

	// The worker still answers through its descriptor.
	w.got = 1
	w.handle(resp, 0)
	w.flush()
	if w.sent != 1 {
		t.Fatalf("sent %d replies, want 1", w.sent)
	}
}

// watcher is one epoll instance's entry for a file: the instance's
// descriptor (all epoll instances share one anonymous inode) and the
// events the entry is armed for.
type watcher struct {
	epoll  int
	events uint32
}

// epollTargets returns, per watched inode, every epoll instance of this
// process that watches it (the "tfd: … events: HEX … ino:HEX" lines of
// /proc/self/fdinfo/N, N being an epoll descriptor).
func epollTargets(t *testing.T) map[uint64][]watcher {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fdinfo")
	if err != nil {
		t.Fatalf("no /proc/self/fdinfo: %v", err)
	}
	out := map[uint64][]watcher{}
	for _, e := range ents {
		b, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "tfd:") {
				continue
			}
			var wt watcher
			var target uint64
			fs := strings.Fields(line)
			for i, f := range fs {
				if f == "events:" && i+1 < len(fs) {
					v, _ := strconv.ParseUint(fs[i+1], 16, 32)
					wt.events = uint32(v)
				}
				if h, ok := strings.CutPrefix(f, "ino:"); ok {
					target, _ = strconv.ParseUint(h, 16, 64)
				}
			}
			wt.epoll = fd
			out[target] = append(out[target], wt)
		}
	}
	return out
}

// TestSocketsNeverFragment: every socket Listen makes ignores ICMP's path
// MTU and sets DF (IP_PMTUDISC_PROBE), at both levels on IPv6.
func TestSocketsNeverFragment(t *testing.T) {
	for _, addr := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback(), netip.IPv6Unspecified()} {
		conns, err := Listen(context.Background(), netip.AddrPortFrom(addr, 0), 2, 0)
		if err != nil {
			if addr.Is6() {
				t.Logf("%v: %v (no IPv6 here)", addr, err)
				continue
			}
			t.Fatal(err)
		}
		for _, c := range conns {
			rc, err := c.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			rc.Control(func(fd uintptr) {
				if v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER); err != nil || v != unix.IP_PMTUDISC_PROBE {
					t.Errorf("%v: IP_MTU_DISCOVER = %d, %v; want IP_PMTUDISC_PROBE", addr, v, err)
				}
				if !addr.Is6() {
					return
				}
				if v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER); err != nil || v != unix.IPV6_PMTUDISC_PROBE {
					t.Errorf("%v: IPV6_MTU_DISCOVER = %d, %v; want IPV6_PMTUDISC_PROBE", addr, v, err)
				}
			})
			c.Close()
		}
	}
}

// TestRecvResetsFilledHeaders: recvmmsg leaves, in each header it fills,
// the datagram's own address and control lengths, and recv restores only
// those before the next call. Headers shrunk as a short datagram would
// leave them must still take a whole sockaddr and every control message,
// and a header the last call did not fill keeps its buffers' sizes. The
// kernel may hand a burst over in more than one call (a loaded machine
// delivers loopback datagrams later), so each round takes what the first
// successful call returns.
func TestRecvResetsFilledHeaders(t *testing.T) {
	st := &ntp.ServedState{Stratum: 3}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	w, _, client := testWorker(t, resp, nil)
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(w.s.Conns[0].LocalAddr().(*net.UDPAddr).Port))
	from := client.LocalAddr().(*net.UDPAddr).AddrPort()
	receive := func(n int) int {
		t.Helper()
		for i := range n {
			if _, err := client.WriteToUDPAddrPort(ntp.ClientRequest(nil, 4, 3, ntp.Time64(i+1)), dst); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, errno := w.recv()
			if errno == 0 && got > 0 {
				if w.rdirty != got {
					t.Fatalf("rdirty %d after %d datagrams", w.rdirty, got)
				}
				return got
			}
			if errno != unix.EAGAIN || time.Now().After(deadline) {
				t.Fatalf("recv: %d datagrams, errno %v", got, errno)
			}
			time.Sleep(time.Millisecond)
		}
	}
	first := receive(2)
	for i := range first {
		w.b.rhdr[i].hdr.Namelen, w.b.rhdr[i].hdr.Controllen = 2, 1
	}
	// Whatever the first round left queued comes first, from the same
	// client: every datagram of this call is checked alike.
	got := receive(3)
	for i := range got {
		h := &w.b.rhdr[i].hdr
		if a := sockaddrAddrPort(w.b.name[i][:min(h.Namelen, unix.SizeofSockaddrInet6)]); a != from {
			t.Errorf("datagram %d from %v, want %v", i, a, from)
		}
		var c control
		parseControl(w.b.oob[i][:min(h.Controllen, oobLen)], &c)
		if c.rx.IsZero() || h.Flags&unix.MSG_CTRUNC != 0 {
			t.Errorf("datagram %d: no receive stamp (flags %#x)", i, h.Flags)
		}
	}
}
