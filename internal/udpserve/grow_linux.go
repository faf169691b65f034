//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// capNetBindService is CAP_NET_BIND_SERVICE's bit in /proc's CapEff.
const capNetBindService = 10

// CanGrow reports whether this process will be able to bind another socket
// to port later, after start: the batch path is there to read it, and the
// port is unprivileged, or the process is not root (so it drops nothing
// later) and holds CAP_NET_BIND_SERVICE, as under timegate's systemd
// unit. A root start drops every capability once its sockets are bound,
// so it opens them all at once instead.
func CanGrow(port int) bool {
	if port >= unprivilegedPortStart() {
		return true
	}
	return unix.Geteuid() != 0 && hasEffectiveCap(capNetBindService)
}

// unprivilegedPortStart is net.ipv4.ip_unprivileged_port_start (1024 when
// it cannot be read: the kernel's default).
func unprivilegedPortStart() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 1024
	}
	return n
}

func hasEffectiveCap(bit uint) bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<bit) != 0
		}
	}
	return false
}
