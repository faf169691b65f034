//go:build !linux

package control

import (
	"errors"
	"net"
)

// peerCred is Linux-only: elsewhere only the socket file's mode protects
// the control socket, and Authorize sees an unknown caller.
func peerCred(*net.UnixConn) (Cred, error) {
	return Cred{}, errors.New("control: SO_PEERCRED is Linux-only")
}
