//go:build linux && !(amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import "net"

// connDrops returns the reader of c's kernel drop counter for
// Stats.socket, for a worker that keeps its *net.UDPConn (the portable
// one): through RawConn.Control, which fails rather than touch a closed
// descriptor.
func connDrops(c *net.UDPConn) func() (uint32, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	return func() (n uint32, ok bool) {
		if rc.Control(func(fd uintptr) { n, ok = kernelDrops(int(fd)) }) != nil {
			return 0, false
		}
		return n, ok
	}
}
