//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"timegate/interleave"
	"timegate/ntp"
)

// TestInterleavedKernelTransmit: an interleaved client over loopback gets,
// from its third request on, the previous reply's kernel transmit time:
// later than the transmit timestamp that reply carried (read before the
// send), earlier than the client read it, and taken from the error queue
// (TxStamps counts it).
func TestInterleavedKernelTransmit(t *testing.T) {
	// [::] is the dual-stack wildcard: IPv4 requests, IPv6 socket.
	for _, addr := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified(), netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
		t.Run(addr.String(), func(t *testing.T) {
			conns, err := Listen(context.Background(), netip.AddrPortFrom(addr, 0), 2, 0)
			if err != nil {
				t.Skipf("cannot listen on %v: %v", addr, err)
			}
			tb, err := interleave.New(1024, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			st := &ntp.ServedState{Stratum: 3, RefID: 0x7f7f0101, Precision: -20}
			resp := &ntp.Responder{State: func() *ntp.ServedState { return st }, Interleave: tb}
			stats := &Stats{}
			srv := &Server{Conns: conns, Responder: func() *ntp.Responder { return resp }, Stats: stats, Log: zaptest.NewLogger(t)}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			dstAddr := netip.MustParseAddr("127.0.0.1")
			if addr.Is6() && !addr.IsUnspecified() {
				dstAddr = addr
			}
			dst := netip.AddrPortFrom(dstAddr, uint16(conns[0].LocalAddr().(*net.UDPAddr).Port))

			var prevRx, prevTx ntp.Time64
			var prevRead time.Time
			interleaved := 0
			for i := range 6 {
				// A new socket per request, as chronyd's client uses: the
				// SO_REUSEPORT hash may pick either worker each time.
				c, err := net.ListenUDP("udp", nil)
				if err != nil {
					t.Fatal(err)
				}
				localRx := ntp.Time64(uint64(i)*10 + 2)
				h := ntp.Header{Version: 4, Mode: ntp.ModeClient, Origin: prevRx, Receive: localRx, Transmit: ntp.Time64(uint64(i)*10 + 5)}
				if _, err := c.WriteToUDPAddrPort(h.Append(nil), dst); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 512)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := c.Read(buf)
				read := time.Now()
				c.Close()
				if err != nil {
					t.Fatal(err)
				}
				r, err := ntp.DecodeHeader(buf[:n])
				if err != nil {
					t.Fatal(err)
				}
				if r.Origin == localRx {
					interleaved++
					kernel := r.Transmit.Time(read)
					if !kernel.After(prevTx.Time(read)) || kernel.After(prevRead) {
						t.Errorf("request %d: interleaved transmit %v not after the daemon's %v and before the client read %v",
							i, kernel, prevTx.Time(read), prevRead)
					}
				} else if r.Origin != h.Transmit {
					t.Fatalf("request %d: origin %#x", i, r.Origin)
				}
				prevRx, prevTx, prevRead = r.Receive, r.Transmit, read
			}
			if interleaved < 4 {
				t.Errorf("%d of requests 2..5 interleaved, want 4", interleaved)
			}
			// A worker counts a reply when sendmmsg returns, which may be
			// after the client read it.
			s := settled(stats, 6)
			for deadline := time.Now().Add(2 * time.Second); s.Interleaved < uint64(interleaved) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
				s = stats.Snapshot()
			}
			if s.Interleaved != uint64(interleaved) || s.TxStamps < 4 {
				t.Errorf("counted %d interleaved replies and %d kernel stamps; want %d and at least 4", s.Interleaved, s.TxStamps, interleaved)
			}
		})
	}
}

// On this kernel the receive stamps stay SO_TIMESTAMPNS where the error
// queue can be filtered, and either way each datagram carries one stamp.
func TestEnableTxStamps(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, _ := c.SyscallConn()
	var ok bool
	var ns, ts int
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		ok = enableTxStamps(int(fd))
		ns, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS)
		ts, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPING)
	})
	if !ok {
		t.Fatal("SO_TIMESTAMPING refused")
	}
	filtered := ts&sofRxFilter != 0
	if filtered != (ns == 1) || (!filtered && ts&unix.SOF_TIMESTAMPING_RX_SOFTWARE == 0) {
		t.Errorf("SO_TIMESTAMPNS %d, SO_TIMESTAMPING %#x: a datagram would carry no stamp or two", ns, ts)
	}
	t.Logf("SO_TIMESTAMPING %#x, SO_TIMESTAMPNS %d (rx filter: %v)", ts, ns, filtered)
}

func TestLoopedPayload(t *testing.T) {
	ntpHdr := make([]byte, 48)
	ntpHdr[0] = 0x24
	udp := binary.BigEndian.AppendUint16(nil, 123)
	udp = binary.BigEndian.AppendUint16(udp, 40000)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(ntpHdr)))
	udp = append(udp, 0, 0)
	ip4 := []byte{0x45, 0, 0, 76, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1}
	ip6 := make([]byte, 40)
	ip6[0], ip6[6] = 0x60, 17
	eth := func(typ uint16) []byte { return binary.BigEndian.AppendUint16(make([]byte, 12), typ) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	vlan := []byte{0x81, 0, 0, 5}
	for name, c := range map[string]struct {
		pkt  []byte
		want int
	}{
		"eth ipv4":      {cat(eth(0x0800), ip4, udp, ntpHdr), 48},
		"eth ipv6":      {cat(eth(0x86dd), ip6, udp, ntpHdr), 48},
		"vlan ipv4":     {cat(make([]byte, 12), vlan, binary.BigEndian.AppendUint16(nil, 0x0800), ip4, udp, ntpHdr), 48},
		"bare ipv4":     {cat(ip4, udp, ntpHdr), 48},
		"bare ipv6":     {cat(ip6, udp, ntpHdr), 48},
		"cut short":     {cat(eth(0x0800), ip4, udp, ntpHdr[:20]), 20},
		"tcp":           {cat(eth(0x0800), []byte{0x45, 0, 0, 76, 0, 0, 0, 0, 64, 6}, make([]byte, 10), udp, ntpHdr), -1},
		"garbage":       {[]byte{1, 2, 3}, -1},
		"empty":         {nil, -1},
		"short udp len": {cat(ip4, []byte{0, 123, 0, 1, 0, 4, 0, 0}, ntpHdr), -1},
	} {
		p := loopedPayload(c.pkt)
		if (p == nil) != (c.want < 0) || (p != nil && len(p) != c.want) {
			t.Errorf("%s: payload %d octets (nil %v), want %d", name, len(p), p == nil, c.want)
		}
	}
}

// FuzzParseTxStamp: any error-queue control buffer parses without
// panicking, and a stamp it reports is never the zero time.
func FuzzParseTxStamp(f *testing.F) {
	stamps := make([]byte, 48)
	copy(stamps, timespec(time.Unix(1e9, 7)))
	serr := make([]byte, 16)
	serr[4] = unix.SO_EE_ORIGIN_TIMESTAMPING
	f.Add(appendCmsg(appendCmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMPING, stamps), unix.IPPROTO_IP, unix.IP_RECVERR, serr))
	f.Add(appendCmsg(nil, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, make([]byte, 16)))
	f.Fuzz(func(t *testing.T, oob []byte) {
		if ts, ok := parseTxStamp(oob); ok && ts.IsZero() {
			t.Fatal("zero stamp reported")
		}
	})
}

// Where the kernel cannot keep SOFTWARE reporting to the error queue, the
// receive stamps move to SO_TIMESTAMPING: one stamp per datagram still,
// which parseControl reads.
func TestEnableTxStampsWithoutFilter(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, _ := c.SyscallConn()
	var ok bool
	var ns int
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		ok = enableTxStampsFilter(int(fd), false)
		ns, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS)
	})
	if !ok || ns != 0 {
		t.Fatalf("enabled %v, SO_TIMESTAMPNS %d: want true and 0", ok, ns)
	}
	s, err := net.DialUDP("udp", nil, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := time.Now()
	s.Write([]byte("x"))
	buf, oob := make([]byte, 16), make([]byte, oobLen)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, oobn, flags, _, err := c.ReadMsgUDP(buf, oob)
	if err != nil || flags&unix.MSG_CTRUNC != 0 {
		t.Fatalf("read: %v, flags %#x", err, flags)
	}
	if rx := parsedControl(oob[:oobn]).rx; rx.Before(before.Add(-time.Millisecond)) || rx.After(time.Now()) {
		t.Fatalf("receive stamp %v", rx)
	}
}

// The interleaved path through a worker allocates nothing either: the
// request asks to be kept, the reply carries the timestamp request, and
// the error queue is read after each send.
func TestInterleavedHandleAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	tb, err := interleave.New(1024, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st := &ntp.ServedState{Stratum: 3}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }, Interleave: tb}
	req := (&ntp.Header{Version: 4, Mode: ntp.ModeClient, Origin: 0x1235, Receive: 7, Transmit: 9}).Append(nil)
	w, srv, _ := testWorker(t, resp, req)
	b := w.b
	now := time.Now()
	allocs := testing.AllocsPerRun(50, func() {
		now = now.Add(time.Microsecond) // a new receive timestamp each time
		oob := b.oob[0][:0]
		oob = appendCmsg(oob, unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, timespec(now))
		b.rhdr[0].hdr.Controllen = uint64(len(oob))
		w.handle(resp, 0)
		w.flush()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request", allocs)
	}
	if s := srv.Stats.Snapshot(); s.Replied != 51 || s.TxStamps == 0 || tb.Len() == 0 {
		t.Errorf("counters %+v, %d entries", s, tb.Len())
	}
}

// TestBasicTransmitLead: a worker learns its transmit lead from kernel
// stamps of basic replies and adds it to their transmit timestamps, and
// the transmit timestamp it serves never falls after the client's kernel
// receive stamp of the reply (the served state has no offset, so served
// and system time agree).
func TestBasicTransmitLead(t *testing.T) {
	conns, err := Listen(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	st := &ntp.ServedState{Stratum: 3, RefID: 0x7f7f0101, Precision: -20}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	stats := &Stats{}
	srv := &Server{Conns: conns, Responder: func() *ntp.Responder { return resp }, Stats: stats, Log: zaptest.NewLogger(t)}
	dst := conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
	w, err := newWorker(srv, conns[0])
	if err != nil {
		t.Fatal(err)
	}
	if !w.txStamps {
		w.close()
		t.Skip("no kernel transmit timestamps here")
	}
	w.probe.every = 0 // probes and timed ordinary sends alternate
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		w.interrupt()
		if err := <-done; err != nil {
			t.Error(err)
		}
		w.close()
	}
	defer stop()

	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) })
	buf, oob := make([]byte, 512), make([]byte, 128)
	worst := -time.Hour
	for i := range 4 * leadWindow {
		req := ntp.ClientRequest(nil, 4, 3, ntp.Time64(uint64(i+1)<<32))
		if _, err := c.WriteToUDPAddrPort(req, dst); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, oobn, _, _, err := c.ReadMsgUDP(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ntp.DecodeHeader(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		var ctl control
		parseControl(oob[:oobn], &ctl)
		if ctl.rx.IsZero() {
			t.Fatal("no kernel receive stamp on the client's socket")
		}
		// The lead is about the least a send took, so T3 lands at or
		// before the reply reached the device give or take that least's
		// spread; whatever the machine's load, the cap holds.
		t3, t4 := r.Transmit.Time(ctl.rx), ctl.rx
		if t3.Sub(t4) > maxLead {
			t.Fatalf("reply %d: transmit timestamp %v is %v after the client's kernel receive stamp", i, t3, t3.Sub(t4))
		}
		worst = max(worst, t3.Sub(t4))
	}
	stop()
	s := stats.Snapshot()
	if s.LeadProbes < leadWindow {
		t.Fatalf("%d probe stamps matched of %d replies", s.LeadProbes, 4*leadWindow)
	}
	// The lead served is what the three estimates give: none until each
	// has a complete window (on a loaded machine preempted sends, beyond
	// maxLeadSample, may leave one short), else the lag less the cost, the
	// cost at most a quarter of the lag.
	e := &w.probe.est
	want, wantCost := time.Duration(0), time.Duration(0)
	if e.lag.est > 0 && e.probeSend.est > 0 && e.plainSend.est > 0 {
		wantCost = min(max(0, e.probeSend.est-e.plainSend.est), e.lag.est/4)
		want = min(e.lag.est-wantCost, maxLead)
	}
	if s.TxLead != want || (want > 0 && (s.TxLeadLag != e.lag.est || s.TxLeadCost != wantCost)) {
		t.Fatalf("served lead %v (lag %v, cost %v), want %v (lag %v, cost %v; probe send %v, ordinary send %v)",
			s.TxLead, s.TxLeadLag, s.TxLeadCost, want, e.lag.est, wantCost, e.probeSend.est, e.plainSend.est)
	}
	if s.TxStamps != 0 {
		t.Fatalf("%d probe stamps went to the interleaved table", s.TxStamps)
	}
	t.Logf("lead %v (lag %v, probe send %v, ordinary send %v) from %d probes; T3 − client's receive stamp at most %v",
		s.TxLead, e.lag.est, e.probeSend.est, e.plainSend.est, s.LeadProbes, worst)
}

// TestSendLagBoundOnlyForFixedStamps: the send-lag bound (maxSendLag)
// sends a batch early only when a pending reply's transmit timestamp is
// final (here an interleavable reply, whose kernel transmit stamp is
// taken); plain replies, restamped at the send, wait for the batch's end
// whatever the time, and read no clock for the bound. A bound of -1 ns is
// passed by any elapsed time, so nothing here depends on speed.
func TestSendLagBoundOnlyForFixedStamps(t *testing.T) {
	st := &ntp.ServedState{Stratum: 3}
	plain := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	w, _, _ := testWorker(t, plain, ntp.ClientRequest(nil, 4, 3, 0x1234))
	w.maxLag = -1
	for range 3 {
		w.handle(plain, 0)
	}
	if w.pending != 3 || w.fixed {
		t.Fatalf("plain replies: %d pending (fixed %v), want 3 waiting for the batch's end", w.pending, w.fixed)
	}
	w.flush()

	tb, err := interleave.New(1024, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	xl := &ntp.Responder{State: func() *ntp.ServedState { return st }, Interleave: tb}
	req := (&ntp.Header{Version: 4, Mode: ntp.ModeClient, Origin: 0x1235, Receive: 7, Transmit: 9}).Append(nil)
	for _, tc := range []struct {
		lag         time.Duration
		wantPending int
	}{{time.Hour, 1}, {-1, 0}} {
		w, _, _ := testWorker(t, xl, req)
		w.maxLag = tc.lag
		w.handle(xl, 0)
		if w.b.verdict[0].Restampable() {
			t.Fatal("the interleavable reply is restampable: the test proves nothing")
		}
		if w.pending != tc.wantPending {
			t.Errorf("bound %v: %d pending after a reply with a final T3, want %d", tc.lag, w.pending, tc.wantPending)
		}
		w.flush()
	}
}

// TestNoTxLead: with the lead switched off (`txlead off`) a worker asks the
// kernel for no probe stamps and adds nothing to transmit timestamps.
func TestNoTxLead(t *testing.T) {
	conns, err := Listen(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	st := &ntp.ServedState{Stratum: 3}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	stats := &Stats{}
	srv := &Server{Conns: conns, Responder: func() *ntp.Responder { return resp }, Stats: stats, Log: zaptest.NewLogger(t), NoTxLead: true}
	dst := conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
	w, err := newWorker(srv, conns[0])
	if err != nil {
		t.Fatal(err)
	}
	w.probe.every = 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 512)
	for i := range 2 * leadWindow {
		if _, err := c.WriteToUDPAddrPort(ntp.ClientRequest(nil, 4, 3, ntp.Time64(uint64(i+1)<<32)), dst); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	w.interrupt()
	if err := <-done; err != nil {
		t.Error(err)
	}
	w.close()
	if s := stats.Snapshot(); s.LeadProbes != 0 || s.TxLead != 0 || w.probe.est.lag.n != 0 || w.probe.est.plainSend.n != 0 {
		t.Fatalf("lead off: %d probes, lead %v, %d lag and %d send samples", s.LeadProbes, s.TxLead, w.probe.est.lag.n, w.probe.est.plainSend.n)
	}
}
