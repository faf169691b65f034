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
	"runtime/debug"
	"syscall"
	"time"
	"unsafe"

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
	// The line allocates nothing per packet, so the collector has nothing to do but
	// could stop the world at the moment a packet is due: it runs only near a memory
	// limit the line never approaches.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(64 << 20)
	fd, err := openTUN(*dev)
	if err != nil {
		fmt.Fprintf(os.Stderr, "delayline: %s: %v\n", *dev, err)
		os.Exit(1)
	}
	l := NewLine(*delay, *capacity, *mtu)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	ready := make(chan error, 1)
	failed := make(chan error, 1)
	// One goroutine on one locked thread reads, waits and writes: it never waits for
	// the Go scheduler to hand a packet to another goroutine, which on a busy machine
	// can take milliseconds (the hand-off runs on ordinary threads).
	go func() {
		runtime.LockOSThread()
		// The thread sleeps in ppoll; its timer slack (50 µs by default) would be
		// added to every early wake-up it asks for.
		if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
			ready <- fmt.Errorf("timer slack: %w", err)
			return
		}
		if err := realtime(*rtprio); err != nil {
			ready <- fmt.Errorf("SCHED_FIFO %d: %w", *rtprio, err)
			return
		}
		ready <- nil
		failed <- l.Run(tunDevice{fd}, wallClock{}, *spin, nil)
	}()
	if err := <-ready; err != nil {
		fmt.Fprintf(os.Stderr, "delayline: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("delayline: ready dev %s delay %v queue %d mtu %d spin %v rtprio %d\n", *dev, *delay, *capacity, *mtu, *spin, *rtprio)
	for {
		select {
		case err := <-failed:
			fmt.Fprintf(os.Stderr, "delayline: %s: %v\n", *dev, err)
			printStats(l)
			os.Exit(1)
		case s := <-sigs:
			printStats(l)
			if s != syscall.SIGUSR1 {
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
// thread runs as soon as it wakes, ahead of every ordinary task on a busy machine: its
// wake-up when a packet comes or falls due is then a few microseconds, not the rest of
// some other task's time slice. It spins at most -spin per packet and sleeps in ppoll
// otherwise, so it cannot starve the machine.
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
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
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

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// tunDevice is a TUN file descriptor in non-blocking mode. Its system calls are raw:
// the Go runtime is not told of them, so the line's thread keeps its P throughout and
// never waits for the scheduler to give one back after a sleep (which on a busy
// machine, with the P handed to an ordinary thread meanwhile, can take milliseconds).
// Every call is non-blocking except ppoll, which a signal (the runtime's preemption
// included) interrupts.
type tunDevice struct{ fd int }

func (d tunDevice) Wait(timeout time.Duration) error {
	var ts unsafe.Pointer
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = unsafe.Pointer(&t)
	}
	fds := [1]unix.PollFd{{Fd: int32(d.fd), Events: unix.POLLIN}}
	_, _, errno := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 1, uintptr(ts), 0, 0, 0)
	if errno != 0 && errno != unix.EINTR {
		return errno
	}
	return nil
}

func (d tunDevice) Read(b []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(d.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch errno {
		case 0:
			return int(n), nil
		case unix.EAGAIN:
			return 0, ErrNoPacket
		case unix.EINTR:
			continue
		}
		return 0, errno
	}
}

func (d tunDevice) Write(b []byte) error {
	_, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(d.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return errno
	}
	return nil
}
