// Command txcost measures on loopback what asking the kernel for a
// software transmit timestamp adds to a UDP send: the time from a clock
// read just before sendmsg to the receiver's kernel receive stamp, for
// sends with and without the per-message SO_TIMESTAMPING request, and for
// the stamped ones the time to the transmit stamp itself.
//
// Usage: go run ./tests/txcost [N]
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"timegate/tests/kstamp"
)

func main() {
	n := 3000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	runtime.LockOSThread()
	lo := [4]byte{127, 0, 0, 9}
	srv, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	cli, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err := unix.Bind(srv, &unix.SockaddrInet4{Addr: lo}); err != nil {
		panic(err)
	}
	unix.Bind(cli, &unix.SockaddrInet4{Addr: lo})
	unix.SetsockoptInt(srv, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, unix.SOF_TIMESTAMPING_SOFTWARE|0x20000)
	if len(os.Args) > 2 && os.Args[2] == "tsonly" {
		unix.SetsockoptInt(srv, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, unix.SOF_TIMESTAMPING_SOFTWARE|0x20000|unix.SOF_TIMESTAMPING_OPT_TSONLY)
	}
	unix.SetsockoptInt(cli, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	csa, _ := unix.Getsockname(cli)
	cmsg := kstamp.TxRequest()
	msg := make([]byte, 48)
	buf, oob, eoob := make([]byte, 64), make([]byte, 128), make([]byte, 256)
	var plain, stamped, toTx []float64
	for i := range 2 * n {
		withStamp := i%2 == 1
		var ctl []byte
		if withStamp {
			ctl = cmsg
		}
		t0 := time.Now()
		if err := unix.Sendmsg(srv, msg, ctl, csa, 0); err != nil {
			panic(err)
		}
		_, oobn, _, _, err := unix.Recvmsg(cli, buf, oob, 0)
		if err != nil {
			panic(err)
		}
		t4, _ := kstamp.Time(oob[:oobn])
		d := float64(t4.Sub(t0)) / 1e3
		if !withStamp {
			plain = append(plain, d)
		} else {
			stamped = append(stamped, d)
			_, eoobn, _, _, err := unix.Recvmsg(srv, buf, eoob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err == nil {
				tx, _ := kstamp.Time(eoob[:eoobn])
				toTx = append(toTx, float64(tx.Sub(t0))/1e3)
			}
		}
		time.Sleep(time.Millisecond)
	}
	p := func(v []float64) string {
		sort.Float64s(v)
		return fmt.Sprintf("min %.3f p10 %.3f p50 %.3f", v[0], v[len(v)/10], v[len(v)/2])
	}
	fmt.Printf("clock read → receiver's stamp, no tx stamp:   %s µs\n", p(plain))
	fmt.Printf("clock read → receiver's stamp, with tx stamp: %s µs\n", p(stamped))
	fmt.Printf("clock read → kernel tx stamp:                 %s µs (n %d)\n", p(toTx), len(toTx))
}
