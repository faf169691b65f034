package metrics

import (
	"net"
	"sync"
)

// maxConns caps the endpoint's open connections. A Prometheus server keeps
// one; a few more serve probes and a curl. Without a cap, idle keep-alive
// connections (each held up to idleTimeout) would let anyone who reaches the
// address spend the daemon's file descriptors, which NTS-KE needs.
const maxConns = 32

// limitListener makes Accept wait while maxConns connections are open, so
// that excess connections wait in the kernel's backlog instead of costing
// descriptors here.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close also wakes an Accept waiting for a slot, so shutting down never
// waits for a connection to end.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back once, on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
