//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"timegate/ntp"
)

// TestServeGrows: a server with Grow starts on one socket; a full batch
// waiting (here queued before it starts, so that the first read is one)
// adds a socket and its worker, up to MaxWorkers and no further; every
// request is answered, from whichever socket the kernel hashes it to.
func TestServeGrows(t *testing.T) {
	t.Run("loopback", func(t *testing.T) { testServeGrows(t, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)) })
	// The gateway's default: every address, dual-stack; a socket added is
	// bound to the first one's address as it reads back ([::]).
	t.Run("wildcard", func(t *testing.T) { testServeGrows(t, netip.AddrPort{}) })
}

func testServeGrows(t *testing.T, addr netip.AddrPort) {
	conns, err := Listen(context.Background(), addr, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	bound := conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(bound.Port())}
	var grows atomic.Int32
	grow := func() (*net.UDPConn, error) {
		grows.Add(1)
		g, err := Listen(context.Background(), bound, 1, 1<<20)
		if err != nil {
			return nil, err
		}
		return g[0], nil
	}
	st := &ntp.ServedState{Stratum: 4, RefID: 0x01020304}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	core, logs := observer.New(zap.InfoLevel)
	srv := &Server{Conns: conns, Responder: func() *ntp.Responder { return resp }, Stats: &Stats{}, Log: zap.New(core),
		Grow: grow, MaxWorkers: 2}

	// More than a batch from many source ports, queued before Serve reads.
	var clients []*net.UDPConn
	for range 3 * batchSize {
		c, err := net.DialUDP("udp", nil, to)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		if _, err := c.Write(ntp.ClientRequest(nil, 4, 3, 1)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	buf := make([]byte, 2048)
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("client %d, queued before the start: %v", i, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessage("NTP load: another worker serves").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no worker added after a full batch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Now two sockets share the port: fresh clients, hashed over both, are
	// all answered; another full batch adds nothing past MaxWorkers.
	for round := range 2 {
		var cs []*net.UDPConn
		for range 2 * batchSize {
			c, err := net.DialUDP("udp", nil, to)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cs = append(cs, c)
			c.Write(ntp.ClientRequest(nil, 4, 3, 2))
		}
		for i, c := range cs {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(buf); err != nil {
				t.Fatalf("round %d, client %d, after growing: %v", round, i, err)
			}
		}
	}
	if n := grows.Load(); n != 1 {
		t.Fatalf("Grow called %d times, want 1 (MaxWorkers 2)", n)
	}
}

// TestCanGrow: an unprivileged port can always take another socket later;
// a privileged one only without a privilege drop to come and with
// CAP_NET_BIND_SERVICE (this test runs either as root, which drops, or
// without the capability).
func TestCanGrow(t *testing.T) {
	if !CanGrow(unprivilegedPortStart()) {
		t.Error("an unprivileged port cannot grow")
	}
	if CanGrow(123) && (unix.Geteuid() == 0 || !hasEffectiveCap(capNetBindService)) {
		t.Error("port 123 grows for a process that cannot bind it after start")
	}
}
