package engine

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"timegate/ntp"
)

// fakeNet is an in-memory network of NTP servers for tests inside a synctest bubble:
// each Dial opens a fresh fake socket (as the engine must, one per request), a Write is
// answered by the server's real ntp.Responder after the path delay, and deadlines run
// on the bubble's fake clock.
type fakeNet struct {
	mu      sync.Mutex
	servers map[netip.AddrPort]*fakeServer
	dials   []string    // addresses dialled, in order
	dialAt  []time.Time // when each was dialled
	open    int         // sockets not yet closed
	writes  int
}

type fakeServer struct {
	resp  *ntp.Responder
	delay time.Duration // one way
	down  atomic.Bool
}

func newFakeNet() *fakeNet { return &fakeNet{servers: map[netip.AddrPort]*fakeServer{}} }

func (n *fakeNet) add(addr string, s *fakeServer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.servers[netip.MustParseAddrPort(addr)] = s
}

func (n *fakeNet) stats() (dials []string, open, writes int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.dials...), n.open, n.writes
}

func (n *fakeNet) DialContext(_ context.Context, network, address string) (net.Conn, error) {
	if network != "udp" {
		return nil, errors.New("fakeNet: only udp")
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dials = append(n.dials, address)
	n.dialAt = append(n.dialAt, time.Now())
	n.open++
	return &fakeConn{net: n, srv: n.servers[ap], in: make(chan []byte, 4), closed: make(chan struct{})}, nil
}

// fakeConn is one connected UDP socket.
type fakeConn struct {
	net.Conn // nil: only the methods below are used
	net      *fakeNet
	srv      *fakeServer
	in       chan []byte
	closed   chan struct{}
	once     sync.Once
	mu       sync.Mutex
	deadline time.Time
}

func (c *fakeConn) Write(p []byte) (int, error) {
	c.net.mu.Lock()
	c.net.writes++
	c.net.mu.Unlock()
	s := c.srv
	if s == nil || s.down.Load() {
		return len(p), nil // lost
	}
	req := append([]byte(nil), p...)
	time.AfterFunc(s.delay, func() {
		out, _ := s.resp.Respond(make([]byte, 0, len(req)), req, netip.MustParseAddrPort("192.0.2.2:50000"), time.Now())
		if out == nil {
			return
		}
		time.AfterFunc(s.delay, func() {
			select {
			case c.in <- out:
			case <-c.closed:
			}
		})
	})
	return len(p), nil
}

func (c *fakeConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	d := c.deadline
	c.mu.Unlock()
	var timeout <-chan time.Time
	if !d.IsZero() {
		t := time.NewTimer(time.Until(d))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case b := <-c.in:
		return copy(p, b), nil
	case <-timeout:
		return 0, os.ErrDeadlineExceeded
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *fakeConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return nil
}

func (c *fakeConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.net.mu.Lock()
		c.net.open--
		c.net.mu.Unlock()
	})
	return nil
}

// fakeResolver answers lookups from a table.
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
