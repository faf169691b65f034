package udpserve

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/ntp"
)

func TestServeLoopback(t *testing.T) {
	conns, err := Listen(context.Background(), netip.AddrPortFrom(netip.IPv6Loopback(), 0), 2, 0)
	if err != nil {
		conns, err = Listen(context.Background(), netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0), 2, 0)
		if err != nil {
			t.Fatal(err)
		}
	}
	conn := conns[0]
	st := &ntp.ServedState{Stratum: 4, RefID: 0x01020304}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	stats := &Stats{}
	srv := &Server{Conns: conns, Responder: func() *ntp.Responder { return resp }, Stats: stats, Log: zaptest.NewLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	c, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nonce := ntp.Time64(0xfeedfacecafebeef)
	t1 := time.Now()
	if _, err := c.Write(ntp.ClientRequest(nil, 4, 3, nonce)); err != nil {
		t.Fatal(err)
	}
	// Hostile datagrams first get nothing: a mode 6 query and an oversized one.
	bad := ntp.ClientRequest(nil, 4, 3, nonce)
	bad[0] = 4<<3 | 6
	c.Write(bad)
	big := make([]byte, 2000)
	copy(big, ntp.ClientRequest(nil, 4, 3, nonce))
	c.Write(big)
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ntp.CheckReply(buf[:n], 4, nonce, t1, time.Now())
	if err != nil || s.Header.Stratum != 4 {
		t.Fatalf("reply: %v %+v", err, s)
	}
	// Causality, not speed: the server's receive and transmit timestamps
	// (the same clock as ours, offset 0) lie between our send and our
	// receipt, however long the machine took (a microsecond of slack for
	// the NTP format's rounding).
	t4 := time.Now().Add(time.Microsecond)
	t0 := t1.Add(-time.Microsecond)
	if rx, tx := s.Header.Receive.Time(t1), s.Header.Transmit.Time(t1); rx.Before(t0) || tx.Before(rx) || tx.After(t4) {
		t.Errorf("server stamps rx %v tx %v not within [%v, %v]", rx, tx, t1, t4)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("got an unexpected second reply of %d bytes", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for s := stats.Snapshot(); s.Dropped[ntp.ReasonMode] != 1 || s.Dropped[ntp.ReasonFraming] != 1 || s.Replied != 1; s = stats.Snapshot() {
		if time.Now().After(deadline) {
			t.Fatalf("drop counters: %+v", s.Dropped)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := stats.Snapshot(); s.Replied != 1 || s.Received != 3 || s.ByMode[3] != 2 || s.ByMode[6] != 1 {
		t.Errorf("counters %+v", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
