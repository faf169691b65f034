// Command delayline delays every packet routed through a TUN device by a fixed time,
// each way: a userspace stand-in for `tc qdisc … netem delay` on kernels without
// sch_netem, for the accuracy harness (tests/harness.StartDelayLine builds the
// namespaces and routes around it). It reads each IP packet from the device, stamps
// it, and writes it back into the device at stamp + delay, where the kernel forwards
// it on; packets leave in the order they came.
//
// Usage: delayline -dev NAME [-delay 1ms] [-queue 256] [-mtu 1500] [-spin 100us] [-rtprio N]
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
	rtprio := flag.Int("rtprio", 0, "run the reading and writing threads SCHED_FIFO at this priority (1-99; 0: normal scheduling)")
	flag.Parse()
	if *dev == "" || *delay < 0 || *capacity < 1 || *mtu < 68 || *mtu > 65535 || *spin < 0 || *rtprio < 0 || *rtprio > 99 || flag.NArg() != 0 {
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
	// Both threads are locked, so that a real-time priority set on them stays with the
	// goroutine that needs it.
	threadReady := make(chan error, 2)
	go func() {
		runtime.LockOSThread()
		threadReady <- realtime(*rtprio)
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
		threadReady <- realtime(*rtprio)
		write := func(b []byte) error { _, err := unix.Write(fd, b); return err }
		l.Release(write, clk, stop)
	}()
	for range 2 {
		if err := <-threadReady; err != nil {
			fmt.Fprintf(os.Stderr, "delayline: SCHED_FIFO %d: %v\n", *rtprio, err)
			os.Exit(1)
		}
	}
	fmt.Printf("delayline: ready dev %s delay %v queue %d mtu %d spin %v rtprio %d\n", *dev, *delay, *capacity, *mtu, *spin, *rtprio)
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

// realtime makes the calling thread SCHED_FIFO at prio (nothing for 0). A real-time
// thread runs as soon as it wakes, ahead of every ordinary task on a busy machine: the
// wake-up after a read and after a sleep is then a few microseconds, not the rest of
// some other task's time slice. It spins at most -spin per packet, and sleeps or
// blocks otherwise, so it cannot starve the machine.
func realtime(prio int) error {
	if prio == 0 {
		return nil
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
	return unix.SchedSetAttr(0, &attr, 0)
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
