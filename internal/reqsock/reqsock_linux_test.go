//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package reqsock

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echo answers every datagram on a loopback socket with its own bytes reversed.
func echo(t *testing.T, network, addr string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			out := bytes.Clone(buf[:n])
			for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
				out[i], out[j] = out[j], out[i]
			}
			pc.WriteTo(out, from)
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// TestRoundTrip: a request leaves from a socket of the set with the kernel's transmit
// stamp, the waiter is woken by the answer, and Ready and Recv give it with the kernel's
// receive stamp, for IPv4 and IPv6.
func TestRoundTrip(t *testing.T) {
	for _, c := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(c.network, func(t *testing.T) {
			dst := echo(t, c.network, c.addr)
			s, err := New()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			woken := make(chan error, 1)
			go func() { woken <- s.Wait() }()

			fd, txStamps, err := s.Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release(fd)
			before := time.Now()
			if err := s.Send(fd, []byte("abc")); err != nil {
				t.Fatal(err)
			}
			if txStamps {
				tx, ok := s.TxTime(fd)
				if !ok || tx.Before(before.Add(-time.Millisecond)) || tx.After(time.Now()) {
					t.Fatalf("transmit stamp %v (%v), sent after %v", tx, ok, before)
				}
			}
			// Until Watch the socket is in no epoll set (and never in Go's
			// poller, which was never told of it): nothing ran an epoll
			// callback for the send or its transmit stamp.
			inSet := func() bool {
				ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
				return unix.EpollCtl(int(s.epfd), unix.EPOLL_CTL_MOD, fd, &ev) == nil
			}
			if inSet() {
				t.Fatal("the socket is in the set before Watch")
			}
			if err := s.Watch(fd); err != nil {
				t.Fatal(err)
			}
			if !inSet() {
				t.Fatal("the socket is not in the set after Watch")
			}
			select {
			case err := <-woken:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Wait did not return on the answer")
			}
			if ready := s.Ready(nil); len(ready) != 1 || ready[0] != fd {
				t.Fatalf("Ready %v, want [%d]", ready, fd)
			}
			buf := make([]byte, 16)
			n, rx, errno := s.Recv(fd, buf)
			if errno != 0 || string(buf[:n]) != "cba" {
				t.Fatalf("Recv %q, %v", buf[:n], errno)
			}
			if rx.Before(before) || rx.After(time.Now()) {
				t.Fatalf("receive stamp %v outside [%v, now]", rx, before)
			}
			if _, _, errno := s.Recv(fd, buf); errno != syscall.EAGAIN {
				t.Fatalf("second Recv: %v, want EAGAIN", errno)
			}
			if ready := s.Ready(nil); len(ready) != 0 {
				t.Fatalf("Ready %v after everything was read", ready)
			}
		})
	}
}

// TestCloseEndsWait: Close wakes a parked waiter with an error, which is how the engine
// stops its waiter goroutine.
func TestCloseEndsWait(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	time.Sleep(10 * time.Millisecond) // parked, most likely; either way Wait must fail
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Wait after Close returned no error: the waiter would loop")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end Wait")
	}
}

// TestConnectedOnly: the kernel drops datagrams from anyone but the socket's peer, so a
// forged answer from another port is never read.
func TestConnectedOnly(t *testing.T) {
	dst := echo(t, "udp4", "127.0.0.1:0")
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fd, _, err := s.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(fd)
	var sa syscall.SockaddrInet4
	if err := getsockname(fd, &sa); err != nil {
		t.Fatal(err)
	}
	forger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	if _, err := forger.WriteToUDP([]byte("forged"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.Port}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // loopback delivers within the send; this is slack
	if _, _, errno := s.Recv(fd, make([]byte, 16)); errno != syscall.EAGAIN {
		t.Fatalf("Recv of a datagram from another port: %v, want EAGAIN", errno)
	}
}

func getsockname(fd int, dst *syscall.SockaddrInet4) error {
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return err
	}
	if v4, ok := sa.(*syscall.SockaddrInet4); ok {
		*dst = *v4
		return nil
	}
	return errors.New("not IPv4")
}
