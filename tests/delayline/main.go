// Command delayline delays every packet routed through a TUN device by a fixed time,
// each way: a userspace stand-in for `tc qdisc … netem delay` on kernels without
// sch_netem, for the accuracy harness (tests/harness.StartDelayLine builds the
// namespaces and routes around it). It reads each IP packet from the device, stamps
// it, and writes it back into the device at stamp + delay, where the kernel forwards
// it on; packets leave in the order they came.
//
// Usage: delayline -dev NAME [-delay 1ms] [-queue 256] [-mtu 1500] [-spin 100us]
//
// The device must exist (`ip tuntap add dev NAME mode tun`) in the caller's network
// namespace. SIGUSR1 prints the counters; SIGTERM and SIGINT print them and exit 0.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	dev := flag.String("dev", "", "TUN device to attach to (must exist)")
	delay := flag.Duration("delay", time.Millisecond, "delay added to every packet")
	capacity := flag.Int("queue", 256, "most packets held at once; more are dropped and counted")
	mtu := flag.Int("mtu", 1500, "longest packet carried; the device's MTU must not exceed it")
	spin := flag.Duration("spin", 100*time.Microsecond, "busy-wait this long before a due time instead of sleeping")
	flag.Parse()
	if *dev == "" || *delay < 0 || *capacity < 1 || *mtu < 68 || *mtu > 65535 || *spin < 0 || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	fd, err := openTUN(*dev)
	if err != nil {
		fmt.Fprintf(os.Stderr, "delayline: %s: %v\n", *dev, err)
		os.Exit(1)
	}
	l := NewLine(*delay, *capacity, *mtu)
	clk := spinClock{spin: *spin}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		read := func(b []byte) (int, error) { return unix.Read(fd, b) }
		for {
			if err := l.Admit(read, clk); err != nil && err != unix.EINTR {
				readErr <- err
				return
			}
		}
	}()
	go func() {
		// The releasing thread sleeps with nanosleep; its own timer slack (50 µs by
		// default) would be added to every early wake-up it asks for.
		runtime.LockOSThread()
		unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
		write := func(b []byte) error { _, err := unix.Write(fd, b); return err }
		l.Release(write, clk, stop)
	}()
	fmt.Printf("delayline: ready dev %s delay %v queue %d mtu %d spin %v\n", *dev, *delay, *capacity, *mtu, *spin)
	for {
		select {
		case err := <-readErr:
			fmt.Fprintf(os.Stderr, "delayline: read %s: %v\n", *dev, err)
			printStats(l)
			os.Exit(1)
		case s := <-sigs:
			printStats(l)
			if s != syscall.SIGUSR1 {
				close(stop)
				return
			}
		}
	}
}

func printStats(l *Line) {
	s := l.Stats()
	mean := time.Duration(0)
	if s.Forwarded > 0 {
		mean = s.LateSum / time.Duration(s.Forwarded)
	}
	fmt.Printf("delayline: stats received=%d forwarded=%d dropped=%d oversize=%d writeerrors=%d maxqueued=%d latemean=%v latemax=%v\n",
		s.Received, s.Forwarded, s.Dropped, s.Oversize, s.WriteErrors, s.MaxQueued, mean, s.LateMax)
}

// openTUN attaches to the existing TUN device name, without the packet-information
// header, so that every read is one IP packet and every write is one.
func openTUN(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF: %w", err)
	}
	return fd, nil
}

// spinClock sleeps until spin before a due time, then busy-waits: a sleeping thread
// wakes tens of microseconds late, a spinning one within a clock read.
type spinClock struct{ spin time.Duration }

func (spinClock) Now() time.Time { return time.Now() }

func (c spinClock) WaitUntil(t time.Time) {
	for {
		d := time.Until(t) - c.spin
		if d <= 0 {
			break
		}
		ts := unix.NsecToTimespec(int64(d))
		unix.Nanosleep(&ts, nil) // early on EINTR: the loop sleeps again
	}
	for time.Now().Before(t) {
	}
}
