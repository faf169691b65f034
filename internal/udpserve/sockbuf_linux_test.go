package udpserve

import (
	"context"
	"errors"
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

// rmemMax reads net.core.rmem_max, the cap on SO_RCVBUF without
// CAP_NET_ADMIN.
func rmemMax(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skipf("no rmem_max: %v", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func fd(t *testing.T, c *net.UDPConn) (fd int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// TestListenReceiveBuffer: every socket of a group gets the receive buffer
// asked for, as getsockopt reads it back (Linux reports twice the value
// set); 0 leaves the kernel's default.
func TestListenReceiveBuffer(t *testing.T) {
	const want = 256 << 10 // under any rmem_max a distribution ships
	if m := rmemMax(t); m < want && os.Geteuid() != 0 {
		t.Skipf("rmem_max %d < %d and not root", m, want)
	}
	conns, err := Listen(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"), 3, want)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		defer c.Close()
		got, err := ReceiveBuffer(c)
		if err != nil || got != want {
			t.Errorf("socket %d: receive buffer %d (%v), want %d", i, got, err, want)
		}
		raw, _ := unix.GetsockoptInt(fd(t, c), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if raw != 2*want {
			t.Errorf("socket %d: getsockopt SO_RCVBUF %d, want %d (doubled)", i, raw, 2*want)
		}
	}
	def, err := Listen(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer def[0].Close()
	b, err := os.ReadFile("/proc/sys/net/core/rmem_default")
	if err != nil {
		t.Skip(err)
	}
	rmemDefault, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if raw, _ := unix.GetsockoptInt(fd(t, def[0]), unix.SOL_SOCKET, unix.SO_RCVBUF); raw != rmemDefault {
		t.Errorf("rcvbuf 0: getsockopt SO_RCVBUF %d, want rmem_default %d", raw, rmemDefault)
	}
}

// TestReceiveBufferBeyondRmemMax: without the privilege, the kernel caps
// SO_RCVBUF at rmem_max without an error, and ReceiveBuffer shows the
// shortfall the gateway warns about; with CAP_NET_ADMIN (root),
// SO_RCVBUFFORCE goes past it.
func TestReceiveBufferBeyondRmemMax(t *testing.T) {
	m := rmemMax(t)
	want := 2 * m
	if want > 256<<20 {
		t.Skipf("rmem_max %d is beyond what this test asks", m)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := setRcvBufFD(fd(t, c), want, false); err != nil {
		t.Fatal(err)
	}
	if got, err := ReceiveBuffer(c); err != nil || got != m {
		t.Errorf("SO_RCVBUF of %d: granted %d (%v), want rmem_max %d", want, got, err, m)
	}
	err = unix.SetsockoptInt(fd(t, c), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want)
	if errors.Is(err, syscall.EPERM) {
		t.Skip("no CAP_NET_ADMIN: SO_RCVBUFFORCE not allowed")
	}
	if err := setRcvBuf(c, want); err != nil {
		t.Fatal(err)
	}
	if got, err := ReceiveBuffer(c); err != nil || got != want {
		t.Errorf("SO_RCVBUFFORCE of %d: granted %d (%v)", want, got, err)
	}
}

// TestKernelDropsCounted: a burst far beyond a small receive buffer, sent
// before the workers start, overflows it; the kernel's drops show in
// Stats.KernelDrops (not in Received), and they stay counted after the
// server stops and the sockets are closed. No figure is asserted beyond
// "some were dropped and the sum adds up".
func TestKernelDropsCounted(t *testing.T) {
	const burst = 4000 // small datagrams take about 1 KiB of buffer each
	conns, err := Listen(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"), 1, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	dst := conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := ntp.ClientRequest(nil, 4, 3, 0x0102030405060708)
	for range burst {
		if _, err := c.WriteToUDPAddrPort(req, dst); err != nil {
			t.Fatal(err)
		}
	}
	st := &ntp.ServedState{Stratum: 3, RefID: 0x7f7f0101}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	stats := &Stats{}
	srv := &Server{Conns: conns, Responder: func() *ntp.Responder { return resp }, Stats: stats, Log: zaptest.NewLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	// Every datagram is read by the worker or dropped by the kernel, at
	// the socket (counted) or, on a loaded machine, in the loopback
	// device's backlog before it (not the socket's to count): wait until
	// the sum reaches the burst or stops moving.
	deadline := time.Now().Add(10 * time.Second)
	s, stable := stats.Snapshot(), 0
	for s.Received+s.KernelDrops < burst && stable < 100 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		prev := s
		s = stats.Snapshot()
		if s == prev {
			stable++
		} else {
			stable = 0
		}
	}
	t.Logf("%d requests read, %d dropped by the kernel (64 KiB buffer)", s.Received, s.KernelDrops)
	if s.KernelDrops == 0 || s.Received == 0 || s.Received+s.KernelDrops > burst {
		t.Fatalf("received %d + kernel drops %d: want some of each, at most %d in all", s.Received, s.KernelDrops, burst)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if after := stats.Snapshot(); after.KernelDrops != s.KernelDrops {
		t.Errorf("kernel drops %d after the sockets closed, %d before", after.KernelDrops, s.KernelDrops)
	}
}
