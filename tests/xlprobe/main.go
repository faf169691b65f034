// Command xlprobe measures, on loopback, the delay an NTP client would
// compute from four kernel timestamps (its transmit and receive stamps, the
// server's receive and transmit stamps) for a UDP echo server whose socket
// is registered with Go's runtime poller (`xlprobe poller`, as timegate's
// workers are) and for one that the poller does not know and that reads
// with blocking system calls (`xlprobe raw`, as chronyd's select loop
// leaves its socket while it sends). It checks BENCHMARKS.md's explanation
// of the delay a chronyd client measures to timegate in interleaved mode:
// on loopback, the wake-up callbacks of the sending socket run between the
// server's transmit stamp and the client's receive stamp.
//
// Usage: go run ./tests/xlprobe poller|raw   (3000 exchanges on 127.0.0.7)
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"timegate/tests/kstamp"
)

func errq(fd int) time.Time {
	oob := make([]byte, 256)
	buf := make([]byte, 256)
	for i := 0; i < 1000; i++ {
		_, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err == nil {
			t, _ := kstamp.Time(oob[:oobn])
			return t
		}
	}
	return time.Time{}
}

type stamps struct{ rx, tx time.Time }

// server: a raw fd serving forever; serve reads blocking (poller=false)
// or through the Go poller (a *net.UDPConn's RawConn).
func server(fd int, out chan stamps, viaPoller *net.UDPConn) {
	runtime.LockOSThread()
	buf := make([]byte, 64)
	oob := make([]byte, 256)
	for {
		var n, oobn int
		var from unix.Sockaddr
		var err error
		if viaPoller != nil {
			rc, _ := viaPoller.SyscallConn()
			rc.Read(func(f uintptr) bool {
				n, oobn, _, from, err = unix.Recvmsg(int(f), buf, oob, unix.MSG_DONTWAIT)
				return err != unix.EAGAIN
			})
			rc.Control(func(f uintptr) { fd = int(f) })
		} else {
			n, oobn, _, from, err = unix.Recvmsg(fd, buf, oob, 0)
		}
		if err != nil {
			continue
		}
		rx, _ := kstamp.Time(oob[:oobn])
		unix.SendmsgN(fd, buf[:n], kstamp.TxRequest(), from, 0)
		out <- stamps{rx, errq(fd)}
	}
}

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "poller" && os.Args[1] != "raw") {
		fmt.Fprintln(os.Stderr, "usage: xlprobe poller|raw")
		os.Exit(2)
	}
	mode := os.Args[1]
	srvAddr := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 7}}
	out := make(chan stamps, 1)
	var sfd int
	if mode == "poller" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 7)})
		if err != nil {
			panic(err)
		}
		rc, _ := c.SyscallConn()
		rc.Control(func(f uintptr) {
			sfd = int(f)
			unix.SetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
			unix.SetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, unix.SOF_TIMESTAMPING_SOFTWARE|0x20000)
		})
		srvAddr.Port = c.LocalAddr().(*net.UDPAddr).Port
		go server(sfd, out, c)
	} else {
		sfd, _ = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		unix.SetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		unix.SetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, unix.SOF_TIMESTAMPING_SOFTWARE|0x20000)
		if err := unix.Bind(sfd, srvAddr); err != nil {
			panic(err)
		}
		sa, _ := unix.Getsockname(sfd)
		srvAddr.Port = sa.(*unix.SockaddrInet4).Port
		go server(sfd, out, nil)
	}
	cfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	unix.SetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	unix.SetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, unix.SOF_TIMESTAMPING_SOFTWARE|unix.SOF_TIMESTAMPING_TX_SOFTWARE|0x20000)
	var d []float64
	buf, oob := make([]byte, 64), make([]byte, 256)
	for i := 0; i < 3000; i++ {
		unix.Sendto(cfd, make([]byte, 48), 0, srvAddr)
		n, oobn, _, _, err := unix.Recvmsg(cfd, buf, oob, 0)
		if err != nil || n == 0 {
			continue
		}
		crx, _ := kstamp.Time(oob[:oobn])
		ctx := errq(cfd)
		s := <-out
		if ctx.IsZero() || s.tx.IsZero() || s.rx.IsZero() {
			continue
		}
		d = append(d, float64(crx.Sub(ctx)-s.tx.Sub(s.rx))/1e3)
		time.Sleep(2 * time.Millisecond)
	}
	sort.Float64s(d)
	fmt.Printf("%s: n %d median %.2f µs p10 %.2f p90 %.2f\n", mode, len(d), d[len(d)/2], d[len(d)/10], d[len(d)*9/10])
}
