// Package sdnotify tells systemd about the daemon's state (sd_notify(3)):
// READY=1 once the sockets are bound, RELOADING=1 / READY=1 around a reload,
// STOPPING=1 on the way out, so that `Type=notify` units start dependants only
// when timegate serves, and `systemctl reload` waits for the reload.
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// Notify sends state to the socket in $NOTIFY_SOCKET; without one (not under
// systemd) it does nothing and reports false.
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // an abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	return true, nil
}

// States timegate sends.
const (
	Ready     = "READY=1"
	Reloading = "RELOADING=1"
	Stopping  = "STOPPING=1"
)
