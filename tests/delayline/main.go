// Command delayline joins two network links and passes every frame from one to the
// other a fixed time after the kernel received it: a userspace stand-in for
// `tc qdisc … netem delay` on kernels without sch_netem, for the accuracy harness
// (tests/harness.StartDelayLine builds the namespaces around it). It is a bridge of two
// ports with a delay: a packet socket on each link (promiscuous, the kernel's receive
// stamp on every frame, checksum and segmentation state carried in a virtio header)
// reads each frame, and the line writes it to the other link at that stamp + delay;
// each direction's frames leave in the order they came.
//
// Usage: delayline -a LINK -b LINK [-delay 1ms] [-queue 128] [-maxframe 65560] [-spin 100us] [-rtprio N]
//
// The links must exist in the caller's network namespace, up and without addresses
// of their own. SIGUSR1 prints the counters; SIGTERM and SIGINT print them and exit 0.
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
	linkA := flag.String("a", "", "one link to join (must exist)")
	linkB := flag.String("b", "", "the other link")
	delay := flag.Duration("delay", time.Millisecond, "delay added to every frame")
	capacity := flag.Int("queue", 128, "most frames held at once each way; more are dropped and counted")
	// A TCP sender's segmentation offload hands a link frames of up to 64 KiB, which
	// the virtio header lets the line pass on whole.
	maxFrame := flag.Int("maxframe", vnetHdrLen+14+65536, "longest frame carried, with its virtio header")
	spin := flag.Duration("spin", 100*time.Microsecond, "busy-wait this long before a due time instead of sleeping")
	rtprio := flag.Int("rtprio", 0, "run the process's threads SCHED_FIFO at this priority (1-99; 0: ordinary scheduling)")
	flag.Parse()
	if *linkA == "" || *linkB == "" || *linkA == *linkB || *delay < 0 || *capacity < 1 || *maxFrame < vnetHdrLen+14+68 || *spin < 0 || *rtprio < 0 || *rtprio > 99 || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	// The line allocates nothing per packet, so the collector has nothing to do but
	// could stop the world at the moment a packet is due: it runs only near a memory
	// limit the line never approaches.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(64 << 20)
	dev, err := openPorts(*linkA, *linkB)
	if err != nil {
		fmt.Fprintf(os.Stderr, "delayline: %v\n", err)
		os.Exit(1)
	}
	l := NewLine(*delay, *capacity, *maxFrame)

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
		failed <- l.Run(dev, wallClock{}, *spin, nil)
	}()
	if err := <-ready; err != nil {
		fmt.Fprintf(os.Stderr, "delayline: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("delayline: ready links %s %s delay %v queue %d maxframe %d spin %v rtprio %d\n", *linkA, *linkB, *delay, *capacity, *maxFrame, *spin, *rtprio)
	for {
		select {
		case err := <-failed:
			fmt.Fprintf(os.Stderr, "delayline: %v\n", err)
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
	fmt.Printf("delayline: stats received=%d forwarded=%d dropped=%d oversize=%d writeerrors=%d maxqueued=%d unstamped=%d latemean=%v latemax=%v late50us=%d\n",
		s.Received, s.Forwarded, s.Dropped, s.Oversize, s.WriteErrors, s.MaxQueued, s.Unstamped, mean, s.LateMax, s.Late50)
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

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
