package harness

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// portAttempts bounds the search for a port that is free on both loopback
// addresses.
const portAttempts = 20

// FreeUDPPort returns a UDP port that was free on 127.0.0.1 and, where IPv6
// works, on ::1 a moment ago. Another process can still take it before the
// daemon binds it: the daemon starters check that the port ended up in their
// process, and StartChrony picks new ports when it did not.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	p, err := freePort("udp")
	if err != nil {
		t.Fatalf("FreeUDPPort: %v", err)
	}
	return p
}

// FreeTCPPort is FreeUDPPort for TCP listeners (NTS-KE).
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	p, err := freePort("tcp")
	if err != nil {
		t.Fatalf("FreeTCPPort: %v", err)
	}
	return p
}

// FreeTCPPorts returns n distinct TCP ports, each free on loopback a moment
// ago. It holds every port it found until it has all n: calling FreeTCPPort n
// times can hand out the same port twice, since the kernel may offer a port
// again as soon as it is released (an etcd member's peer port once equalled
// another member's client port that way).
func FreeTCPPorts(t testing.TB, n int) []int {
	t.Helper()
	return freePorts(t, "tcp", n)
}

// FreeUDPPorts is FreeTCPPorts for UDP.
func FreeUDPPorts(t testing.TB, n int) []int {
	t.Helper()
	return freePorts(t, "udp", n)
}

func freePorts(t testing.TB, network string, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == n+portAttempts {
			t.Fatalf("no %d %s ports free on both 127.0.0.1 and ::1 after %d tries", n, network, tries)
		}
		c, port, err := listenLoopback(network, "127.0.0.1", 0)
		if err != nil {
			t.Fatalf("free %s ports: %v", network, err)
		}
		held = append(held, c) // held, so never offered again in this call
		if c6, _, err := listenLoopback(network, "::1", port); err == nil {
			c6.Close()
		} else if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		ports = append(ports, port)
	}
	return ports
}

// freePort binds 127.0.0.1:0, then the same port on [::1], then releases both. An
// IPv6 failure other than "address in use" means there is no usable IPv6
// loopback, so nothing there to collide with.
func freePort(network string) (int, error) {
	var lastErr error
	for range portAttempts {
		c4, port, err := listenLoopback(network, "127.0.0.1", 0)
		if err != nil {
			return 0, err
		}
		c6, _, err := listenLoopback(network, "::1", port)
		c4.Close()
		if err == nil {
			c6.Close()
			return port, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return port, nil
		}
		lastErr = err
	}
	return 0, fmt.Errorf("no %s port free on both 127.0.0.1 and ::1 after %d tries: %w", network, portAttempts, lastErr)
}

func listenLoopback(network, host string, port int) (io.Closer, int, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, 0, err
		}
		return c, c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	return l, l.Addr().(*net.TCPAddr).Port, nil
}
