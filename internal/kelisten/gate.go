package kelisten

import (
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// errGateTimeout ends a handshake that waited for a slot until its
// session's deadline.
var errGateTimeout = errors.New("kelisten: no handshake slot before the deadline")

// gatedConn is a session's connection while Config.HandshakeSlots bounds
// the handshakes' public-key work. The TLS server takes a slot when the
// ClientHello has been read (GetConfigForClient, see gatedTLS) and gives
// it back at its first write: Go's TLS 1.3 server buffers ServerHello
// through Finished, so that write comes after the key exchange and the
// certificate signature and before any wait for the client. Only the
// session's goroutine touches it.
type gatedConn struct {
	net.Conn
	gate     chan struct{}
	deadline time.Time
	held     bool
}

func (c *gatedConn) acquire() error {
	if c.held {
		return nil
	}
	select {
	case c.gate <- struct{}{}:
		c.held = true
		return nil
	default:
	}
	t := time.NewTimer(time.Until(c.deadline))
	defer t.Stop()
	select {
	case c.gate <- struct{}{}:
		c.held = true
		return nil
	case <-t.C:
		return errGateTimeout
	}
}

func (c *gatedConn) release() {
	if c.held {
		<-c.gate
		c.held = false
	}
}

func (c *gatedConn) Write(b []byte) (int, error) {
	c.release()
	return c.Conn.Write(b)
}

// gatedTLS returns a copy of base whose GetConfigForClient takes the
// session's slot first (then asks base's own hook, if any).
func gatedTLS(base *tls.Config) *tls.Config {
	t := base.Clone()
	next := base.GetConfigForClient
	t.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if gc, ok := h.Conn.(*gatedConn); ok {
			if err := gc.acquire(); err != nil {
				return nil, err
			}
		}
		if next != nil {
			return next(h)
		}
		return nil, nil
	}
	return t
}
