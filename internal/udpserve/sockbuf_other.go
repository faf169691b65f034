//go:build !linux

package udpserve

import (
	"errors"
	"net"
)

// setRcvBuf sets c's receive buffer to n bytes with SO_RCVBUF, which the
// system may cap.
func setRcvBuf(c *net.UDPConn, n int) error { return c.SetReadBuffer(n) }

// connDrops: no portable drop counter.
func connDrops(*net.UDPConn) func() (uint32, bool) { return nil }

// ReceiveBuffer is not known portably.
func ReceiveBuffer(*net.UDPConn) (int, error) { return 0, errors.ErrUnsupported }
