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
	"strconv"
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
	rtprio := flag.Int("rtprio", 0, "run the process's threads SCHED_FIFO at this priority (1-99; 0: ordinary scheduling)")
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
	fmt.Printf("delayline: stats received=%d forwarded=%d dropped=%d oversize=%d writeerrors=%d maxqueued=%d latemean=%v latemax=%v late50us=%d\n",
		s.Received, s.Forwarded, s.Dropped, s.Oversize, s.WriteErrors, s.MaxQueued, mean, s.LateMax, s.Late50)
}

// realtime makes every thread of the process SCHED_FIFO at prio (nothing for 0);
// threads made later inherit it from the thread that makes them. A real-time thread
// runs as soon as it wakes, ahead of every ordinary task on a busy machine, so the
// line's wake-up when a packet comes or falls due is a few microseconds, not the rest
// of some other task's time slice. Every thread, not only the line's: the Go runtime
// preempts a goroutine that has run 10 ms without a reschedule (the line's, which
// never blocks in the scheduler, every 10 ms), and a locked goroutine comes back to
// its thread through another one, which must not wait behind ordinary tasks either.
// The line spins at most -spin per packet and sleeps in ppoll otherwise, and the other
// threads are the runtime's, mostly asleep: the process cannot starve the machine.
func realtime(prio int) error {
	if prio == 0 {
		return nil
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		// A thread that exited since the listing is no loss.
		if err := unix.SchedSetAttr(tid, &attr, 0); err != nil && err != unix.ESRCH {
			return fmt.Errorf("thread %d: %w", tid, err)
		}
	}
	return nil
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

// tunDevice is a TUN file descriptor in non-blocking mode.
type tunDevice struct{ fd int }

func (d tunDevice) Wait(timeout time.Duration) error {
	var ts *unix.Timespec
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	fds := []unix.PollFd{{Fd: int32(d.fd), Events: unix.POLLIN}}
	if _, err := unix.Ppoll(fds, ts, nil); err != nil && err != unix.EINTR {
		return err
	}
	return nil
}

func (d tunDevice) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(d.fd, b)
		switch err {
		case nil:
			return n, nil
		case unix.EAGAIN:
			return 0, ErrNoPacket
		case unix.EINTR:
			continue
		}
		return 0, err
	}
}

func (d tunDevice) Write(b []byte) error {
	_, err := unix.Write(d.fd, b)
	return err
}
