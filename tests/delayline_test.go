package tests

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"timegate/internal/sockstamp"
	"timegate/tests/harness"
)

// The userspace delay line (tests/delayline, harness.StartDelayLine) that the accuracy
// harness uses where the kernel has no sch_netem: it forwards both ways, never faster
// than its delay, holds a flood in fixed memory, and leaves nothing behind.
func TestDelayLine(t *testing.T) {
	harness.RequireRoot(t, "network namespaces and packet sockets")
	harness.RequireBinary(t, "ip")
	b := harness.NewBuild("", "./tests/delayline")
	t.Cleanup(func() { b.Close() })
	bin := b.Path(t, "delayline")

	t.Run("both ways, round trip at least 2D", func(t *testing.T) {
		const d = 5 * time.Millisecond
		dl := harness.StartDelayLine(t, bin, harness.DelayLineOptions{Delay: d})
		const n = 20
		// Each side in turn serves an echo the other side asks: requests and replies
		// both cross the line, so every round trip includes the delay twice.
		for _, c := range []struct{ name, echoNS, echoAddr, clientNS string }{
			{"down to up", dl.Up, harness.DelayLineUpAddr, dl.Down},
			{"up to down", dl.Down, harness.DelayLineDownAddr, dl.Up},
		} {
			echo := listenIn(t, c.echoNS, c.echoAddr)
			go udpEcho(echo)
			cli := listenIn(t, c.clientNS, "")
			for i := range n {
				msg := fmt.Appendf(nil, "%s %d", c.name, i)
				rtt, reply := udpRoundTrip(t, cli, echo.LocalAddr().(*net.UDPAddr), msg)
				if !bytes.Equal(reply, msg) {
					t.Fatalf("%s: sent %q, echoed %q", c.name, msg, reply)
				}
				if rtt < 2*d {
					t.Errorf("%s: round trip %v, less than twice the line's delay %v", c.name, rtt, d)
				}
			}
		}
		s := dl.Stats(t)
		t.Logf("delay line counters: %+v", s)
		if s.Forwarded < 4*n || s.Dropped != 0 || s.WriteErrors != 0 {
			t.Errorf("after %d echoes each way: %+v; want at least %d forwarded, none dropped", n, s, 4*n)
		}
	})

	t.Run("flood beyond the queue is dropped and counted", func(t *testing.T) {
		const queue = 16
		dl := harness.StartDelayLine(t, bin, harness.DelayLineOptions{Delay: 100 * time.Millisecond, Queue: queue})
		sink := listenIn(t, dl.Up, harness.DelayLineUpAddr)
		got := make(chan int)
		go func() {
			buf := make([]byte, 2048)
			count := 0
			for {
				if _, err := sink.Read(buf); err != nil {
					got <- count
					return
				}
				count++
			}
		}()
		src := listenIn(t, dl.Down, "")
		rssBefore := vmRSS(t, dl.Proc.Pid())
		// 20000 packets of 1400 bytes: 28 MB, which a line that grew with its input
		// would hold for the 100 ms delay.
		payload := bytes.Repeat([]byte{0x5a}, 1400)
		to := sink.LocalAddr().(*net.UDPAddr)
		for range 20000 {
			src.WriteToUDP(payload, to) // a full socket or device queue drops: fine, it is a flood
		}
		var s harness.DelayLineStats
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			s = dl.Stats(t)
			return s.Received == s.Forwarded+s.Dropped+s.Oversize+s.WriteErrors, fmt.Sprintf("line not drained: %+v", s)
		})
		rssAfter := vmRSS(t, dl.Proc.Pid())
		time.Sleep(200 * time.Millisecond) // the sink has had everything the line wrote
		sink.Close()
		sunk := <-got
		t.Logf("flood: %+v; sink got %d; delayline VmRSS %d kB before, %d kB after", s, sunk, rssBefore, rssAfter)
		if s.Dropped == 0 {
			t.Errorf("no drops counted after a flood far beyond a queue of %d: %+v", queue, s)
		}
		if s.MaxQueued > queue {
			t.Errorf("held %d packets at once, more than its queue of %d", s.MaxQueued, queue)
		}
		if sunk == 0 || uint64(sunk) > s.Forwarded {
			t.Errorf("sink got %d packets, line forwarded %d", sunk, s.Forwarded)
		}
		if grew := rssAfter - rssBefore; grew > 4<<10 {
			t.Errorf("delayline's resident memory grew by %d kB during the flood", grew)
		}
	})

	t.Run("cleanup removes the process and namespaces", func(t *testing.T) {
		var dl *harness.DelayLine
		var pid int
		t.Run("line", func(t *testing.T) {
			dl = harness.StartDelayLine(t, bin, harness.DelayLineOptions{})
			pid = dl.Proc.Pid()
			if !dl.Proc.Running() {
				t.Fatal("delayline not running after start")
			}
		})
		if dl == nil {
			t.Fatal("no delay line was started")
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !os.IsNotExist(err) {
			t.Errorf("delayline pid %d still exists after cleanup (%v)", pid, err)
		}
		for _, ns := range []string{dl.Up, dl.Mid, dl.Down} {
			if _, err := os.Stat("/var/run/netns/" + ns); !os.IsNotExist(err) {
				t.Errorf("namespace %s still exists after cleanup (%v)", ns, err)
			}
		}
		out, err := exec.Command(harness.RequireBinary(t, "ip"), "-o", "link", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show: %v\n%s", err, out)
		}
		if strings.Contains(string(out), dl.ID) {
			t.Errorf("a link of the delay line is left in this namespace:\n%s", out)
		}
	})
}

// listenIn opens a UDP socket in namespace ns on host (any address when "").
func listenIn(t *testing.T, ns, host string) *net.UDPConn {
	t.Helper()
	c, err := harness.ListenUDPInNetns(ns, &net.UDPAddr{IP: net.ParseIP(host)})
	if err != nil {
		t.Fatalf("socket in %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func udpEcho(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		c.WriteToUDP(buf[:n], from)
	}
}

// udpRoundTrip sends msg to to and waits for the first datagram back; stale replies
// (from an earlier, timed-out exchange) are skipped by content.
func udpRoundTrip(t *testing.T, c *net.UDPConn, to *net.UDPAddr, msg []byte) (time.Duration, []byte) {
	t.Helper()
	buf := make([]byte, 2048)
	start := time.Now()
	if _, err := c.WriteToUDP(msg, to); err != nil {
		t.Fatalf("send to %v: %v", to, err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reply from %v: %v", to, err)
		}
		if bytes.Equal(buf[:n], msg) {
			return time.Since(start), buf[:n]
		}
	}
}

// vmRSS is a process's resident set in kB.
func vmRSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// BenchmarkDelayLineRoundTrip measures what the line adds: UDP echo round trips from
// the downstream namespace to the upstream one, through a line of DELAYLINE_DELAY
// (default 1ms; 0 shows the line's own path alone), its threads SCHED_FIFO at
// DELAYLINE_RTPRIO (default 0: ordinary), one at a time, 2 ms apart. Every time is the
// kernel's: the client's and the echo's transmit stamps and their receive stamps, so a
// leg is the line and the kernel's paths, not the wake-ups of this process (the echo is
// a goroutine of it; both sockets are timed on one clock). It reports, in µs, the round
// trip's minimum, median, p99 and maximum, each leg's median, and the median and p99
// of |out − back| / 2: the offset error an NTP client with kernel stamps would take
// from the path's asymmetry.
//
//	go test -run '^$' -bench DelayLineRoundTrip -benchtime 3000x ./tests/
func BenchmarkDelayLineRoundTrip(b *testing.B) {
	harness.RequireRoot(b, "network namespaces and raw sockets")
	d := time.Millisecond
	if s := os.Getenv("DELAYLINE_DELAY"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}
	bld := harness.NewBuild("", "./tests/delayline")
	b.Cleanup(func() { bld.Close() })
	rt, _ := strconv.Atoi(os.Getenv("DELAYLINE_RTPRIO"))
	dl := harness.StartDelayLine(b, bld.Path(b, "delayline"), harness.DelayLineOptions{Delay: d, RTPrio: rt})
	stamped := func(ns, host string) *net.UDPConn {
		c, err := harness.ListenUDPInNetns(ns, &net.UDPAddr{IP: net.ParseIP(host)})
		if err == nil {
			err = sockstamp.Enable(c)
		}
		if err == nil {
			err = sockstamp.EnableTx(c)
		}
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	echo := stamped(dl.Up, harness.DelayLineUpAddr)
	defer echo.Close()
	// The echo hands its receive and transmit stamps of each request (by its first 8
	// bytes) to the client's side of the benchmark.
	type echoed struct {
		id     uint64
		t2, t3 time.Time
	}
	echoes := make(chan echoed, 64)
	go func() {
		buf, oob := make([]byte, 128), make([]byte, sockstamp.OOBSize)
		for {
			n, oobn, _, from, err := echo.ReadMsgUDP(buf, oob)
			if err != nil {
				return
			}
			t2, ok := sockstamp.Time(oob[:oobn])
			if !ok || n < 8 {
				continue
			}
			if _, err := echo.WriteToUDP(buf[:n], from); err != nil {
				continue
			}
			t3, err := sockstamp.TxTime(echo)
			if err != nil {
				continue
			}
			echoes <- echoed{binary.LittleEndian.Uint64(buf), t2, t3}
		}
	}()
	cli := stamped(dl.Down, "")
	defer cli.Close()
	to := echo.LocalAddr().(*net.UDPAddr)
	buf, oob := make([]byte, 128), make([]byte, sockstamp.OOBSize)
	msg := make([]byte, 48)
	exchange := func(i uint64) (t1, t2, t3, t4 time.Time) {
		binary.LittleEndian.PutUint64(msg, i)
		if _, err := cli.WriteToUDP(msg, to); err != nil {
			b.Fatal(err)
		}
		for {
			cli.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, oobn, _, _, err := cli.ReadMsgUDP(buf, oob)
			if err != nil {
				b.Fatal(err)
			}
			if n != len(msg) || !bytes.Equal(buf[:n], msg) {
				continue
			}
			var ok bool
			if t4, ok = sockstamp.Time(oob[:oobn]); !ok {
				b.Fatal("no receive stamp on the echo's reply")
			}
			break
		}
		// Read once the reply is in: the first request waits for address resolution,
		// and its transmit stamp comes when it leaves.
		t1, err := sockstamp.TxTime(cli)
		if err != nil {
			b.Fatal(err)
		}
		for e := range echoes {
			if e.id == i {
				return t1, e.t2, e.t3, t4
			}
		}
		b.Fatal("echo stopped")
		return
	}
	for i := range 20 { // neighbour entries, the process's pages
		exchange(1<<32 + uint64(i))
	}
	var rtts, outs, backs, asym []float64
	b.ResetTimer()
	for i := range b.N {
		t1, t2, t3, t4 := exchange(uint64(i))
		us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
		out, back := us(t2.Sub(t1)), us(t4.Sub(t3))
		rtts = append(rtts, out+back)
		outs = append(outs, out)
		backs = append(backs, back)
		asym = append(asym, math.Abs(out-back)/2)
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	pct := func(v []float64, p float64) float64 {
		slices.Sort(v)
		return v[min(len(v)-1, int(p*float64(len(v))))]
	}
	b.ReportMetric(pct(rtts, 0), "min-µs")
	b.ReportMetric(pct(rtts, 0.5), "p50-µs")
	b.ReportMetric(pct(rtts, 0.99), "p99-µs")
	b.ReportMetric(pct(rtts, 1), "max-µs")
	b.ReportMetric(pct(outs, 0.5), "out-p50-µs")
	b.ReportMetric(pct(backs, 0.5), "back-p50-µs")
	b.ReportMetric(pct(asym, 0.5), "asym-p50-µs")
	b.ReportMetric(pct(asym, 0.99), "asym-p99-µs")
	b.Logf("delay %v each way, rtprio %d; %d round trips; line: %+v", d, rt, len(rtts), dl.Stats(b))
}
