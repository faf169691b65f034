//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package engine

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"timegate/ntp"
)

// rawRunner is a runner with the raw request path open and nothing else running; the
// cleanup closes it as Run's end does and waits for the waiter.
func rawRunner(t *testing.T) *runner {
	t.Helper()
	e, _, err := New(Options{Publish: func(*ntp.ServedState) {}, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &runner{Engine: e, ctx: ctx, events: make(chan any, 64), timer: time.NewTimer(time.Hour)}
	r.openRaw()
	if r.raw.set == nil {
		t.Fatal("the raw request path did not open")
	}
	t.Cleanup(func() {
		cancel()
		r.closeRaw()
		r.wg.Wait()
	})
	return r
}

func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err != unix.EBADF
}

// TestRawRequestExpires: a request nobody answers keeps its socket until its wait is
// over, is what the loop's timer is set for meanwhile, and is closed then: silent
// upstreams cannot pile sockets up.
func TestRawRequestExpires(t *testing.T) {
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	r := rawRunner(t)
	a := &assoc{addr: netip.MustParseAddrPort(silent.LocalAddr().String()), reqID: 1}
	r.assocs = []*assoc{a}
	r.sendRaw(a, make([]byte, ntp.HeaderLen), 50*time.Millisecond)
	if !a.out.open || r.raw.byFD[a.out.fd] != a {
		t.Fatalf("no request in flight after the send: %+v", a.out)
	}
	fd, until := a.out.fd, a.out.until
	if !a.out.kernelTx {
		t.Error("loopback gave no kernel transmit stamp")
	}
	buf := make([]byte, 64)
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := silent.ReadFrom(buf); err != nil || n != ntp.HeaderLen {
		t.Fatalf("the upstream got %d octets, %v", n, err)
	}
	r.rearm()
	if !r.timerAt.Equal(until) {
		t.Fatalf("timer set for %v, want the request's expiry %v", r.timerAt, until)
	}
	r.expireRequests(until.Add(-time.Nanosecond))
	if !a.out.open || !fdOpen(fd) {
		t.Fatal("the request was given up before its wait was over")
	}
	r.expireRequests(until)
	if a.out.open || len(r.raw.byFD) != 0 || fdOpen(fd) {
		t.Fatalf("after its wait the request is still open: %+v, %d sockets, fd %d open %v", a.out, len(r.raw.byFD), fd, fdOpen(fd))
	}
	r.rearm()
	if !r.timerAt.IsZero() {
		t.Fatalf("timer still set for %v with nothing due", r.timerAt)
	}
}

// TestRawRequestRefused: the kernel's report of a refused request (ICMP port
// unreachable) wakes the waiter, and reading it gives the request up, as a failed read
// did on the portable path.
func TestRawRequestRefused(t *testing.T) {
	gone, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddrPort(gone.LocalAddr().String())
	gone.Close()
	r := rawRunner(t)
	a := &assoc{addr: dst, reqID: 1}
	r.assocs = []*assoc{a}
	r.sendRaw(a, make([]byte, ntp.HeaderLen), 4*time.Second)
	fd := a.out.fd
	select {
	case ev := <-r.events:
		if _, ok := ev.(repliesReady); !ok {
			t.Fatalf("event %T, want repliesReady", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the refusal did not wake the waiter")
	}
	r.readReplies()
	if a.out.open || len(r.raw.byFD) != 0 || fdOpen(fd) {
		t.Fatalf("the refused request is still open: %+v", a.out)
	}
}
