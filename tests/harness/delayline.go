package harness

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The delay line's addresses, the same in every instance: each lives only in its own
// namespaces. The upstream side has 10.77.0.0/24, the downstream side 10.77.1.0/24, on
// one link-layer segment through the line: each reaches the other directly.
const (
	DelayLineUpAddr   = "10.77.0.1"
	DelayLineDownAddr = "10.77.1.2"
	// DelayLineNet covers both sides (for a server's `allow`), and is the prefix
	// both sides have on the link.
	DelayLineNet    = "10.77.0.0/16"
	delayLinePrefix = "/16"
)

// DelayLineOptions adjust StartDelayLine.
type DelayLineOptions struct {
	Delay time.Duration // each way (0: the line's own path alone)
	Queue int           // frames held at once each way; default 128
	// RTPrio runs the line's process SCHED_FIFO at this priority (0: ordinary
	// scheduling); on a busy machine it cuts its wake-up latency.
	RTPrio int
	// UpAddrs are more addresses (in 10.77.0.0/24) for the upstream namespace.
	UpAddrs []string
}

// DelayLine is a link between two network namespaces, Up and Down, through a third,
// Mid, where a delayline process (tests/delayline) bridges the two veths that end
// there and passes each frame on Delay after the kernel received it:
//
//	Up (10.77.0.1, UpAddrs) ==veth== Mid (no addresses; delayline -a … -b …) ==veth== Down (10.77.1.2)
//
// Up and Down are on one segment (10.77.0.0/16): address resolution crosses the line
// like everything else, and nothing in Mid routes. The line holds a packet between
// the links, where a wire would, after the sender's software transmit stamp (taken as
// the packet enters its veth) and before the receiver's. tc netem on the sender's
// link holds it in the queue before the driver, so that stamp would come after the
// delay instead. Cleanup stops the process (exit status 0 required), then deletes
// the namespaces, which removes the veths with them.
type DelayLine struct {
	Up, Mid, Down string // namespace names (`ip netns exec NAME`, /var/run/netns/NAME)
	ID            string // in the names of the namespaces and links
	Delay         time.Duration
	Proc          *Process
}

// StartDelayLine builds the namespaces and starts bin (the built tests/delayline) in
// the middle one. It needs root and ip(8): without one of them the test is skipped,
// or under CI=true fails.
func StartDelayLine(t testing.TB, bin string, o DelayLineOptions) *DelayLine {
	t.Helper()
	RequireRoot(t, "network namespaces and packet sockets")
	ip := RequireBinary(t, "ip")
	if o.Queue == 0 {
		o.Queue = 128
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	d := &DelayLine{Up: "tgdl-" + id + "-up", Mid: "tgdl-" + id + "-mid", Down: "tgdl-" + id + "-dn",
		ID: id, Delay: o.Delay}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("delay line: ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{d.Up, d.Mid, d.Down} {
		run("netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("delay line: ip netns del %s: %v\n%s", ns, err, out)
			}
		})
	}
	// veth names: u/d on the outer side, U/D in Mid; created straight into their
	// namespaces, so nothing is ever left in this one.
	vu, vmu, vd, vmd := "tgdlu"+id, "tgdlU"+id, "tgdld"+id, "tgdlD"+id
	run("link", "add", vu, "netns", d.Up, "type", "veth", "peer", "name", vmu, "netns", d.Mid)
	run("link", "add", vd, "netns", d.Down, "type", "veth", "peer", "name", vmd, "netns", d.Mid)
	sysctl := func(ns, key, value string) {
		t.Helper()
		// /proc/sys/net belongs to the namespace of whoever opens it: write it from
		// inside with ip netns exec, through sh to avoid needing sysctl(8).
		path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
		run("netns", "exec", ns, "sh", "-c", fmt.Sprintf("echo %s > %s", value, path))
	}
	// No IPv6 on the segment: its router and neighbour solicitations would be the
	// only other traffic through the line.
	for _, ns := range []string{d.Up, d.Mid, d.Down} {
		sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")
	}
	for _, c := range [][]string{
		{"-n", d.Up, "link", "set", "lo", "up"},
		{"-n", d.Down, "link", "set", "lo", "up"},
		{"-n", d.Up, "addr", "add", DelayLineUpAddr + delayLinePrefix, "dev", vu},
		{"-n", d.Down, "addr", "add", DelayLineDownAddr + delayLinePrefix, "dev", vd},
		{"-n", d.Up, "link", "set", vu, "up"},
		{"-n", d.Down, "link", "set", vd, "up"},
		{"-n", d.Mid, "link", "set", vmu, "up"},
		{"-n", d.Mid, "link", "set", vmd, "up"},
	} {
		run(c...)
	}
	for _, a := range o.UpAddrs {
		run("-n", d.Up, "addr", "add", a+delayLinePrefix, "dev", vu)
	}

	p := newProcess(t, "delayline", "delayline")
	p.path, p.args = inNetns(t, d.Mid, bin, []string{"-a", vmu, "-b", vmd, "-delay", o.Delay.String(), "-queue", strconv.Itoa(o.Queue),
		"-rtprio", strconv.Itoa(o.RTPrio)})
	p.ready = func() (bool, string, error) {
		if strings.Contains(lastRun(p.Log()), "delayline: ready") {
			return true, "ready", nil
		}
		return false, "no \"delayline: ready\" line yet", nil
	}
	if err := p.start(readyTimeout); err != nil {
		t.Fatalf("%v", err)
	}
	d.Proc = p
	return d
}

// DelayLineStats are the process's counters (tests/delayline's Stats).
type DelayLineStats struct {
	Received, Forwarded, Dropped, Oversize, WriteErrors, MaxQueued uint64
	Unstamped                                                      uint64 // frames without the kernel's receive stamp
	LateMean, LateMax                                              time.Duration
	Late50                                                         uint64 // writes begun > 50 µs after due
}

// Stats asks the process for its counters (SIGUSR1) and parses the line it prints.
func (d *DelayLine) Stats(t testing.TB) DelayLineStats {
	t.Helper()
	from := d.Proc.LogSize()
	if err := d.Proc.Signal(unix.SIGUSR1); err != nil {
		t.Fatalf("delay line: %v", err)
	}
	line := d.Proc.WaitLog(t, from, `delayline: stats [^\n]*\n`, 10*time.Second)
	s, err := parseDelayLineStats(line)
	if err != nil {
		t.Fatalf("delay line: %q: %v", line, err)
	}
	return s
}

func parseDelayLineStats(line string) (DelayLineStats, error) {
	var s DelayLineStats
	f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "delayline: stats "))
	counts := []*uint64{&s.Received, &s.Forwarded, &s.Dropped, &s.Oversize, &s.WriteErrors, &s.MaxQueued, &s.Unstamped}
	names := []string{"received", "forwarded", "dropped", "oversize", "writeerrors", "maxqueued", "unstamped", "latemean", "latemax", "late50us"}
	if len(f) != len(names) {
		return s, fmt.Errorf("%d fields, want %d", len(f), len(names))
	}
	for i, kv := range f {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k != names[i] {
			return s, fmt.Errorf("field %d is %q, want %s=…", i, kv, names[i])
		}
		var err error
		switch {
		case i < len(counts):
			*counts[i], err = strconv.ParseUint(v, 10, 64)
		case k == "latemean":
			s.LateMean, err = time.ParseDuration(v)
		case k == "latemax":
			s.LateMax, err = time.ParseDuration(v)
		default:
			s.Late50, err = strconv.ParseUint(v, 10, 64)
		}
		if err != nil {
			return s, fmt.Errorf("%s: %w", k, err)
		}
	}
	return s, nil
}

// ListenUDPInNetns opens a UDP socket bound to addr in network namespace ns: the
// socket keeps the namespace it was made in, whatever thread uses it later, so a test
// can talk from inside a namespace without a helper process.
func ListenUDPInNetns(ns string, addr *net.UDPAddr) (*net.UDPConn, error) {
	type result struct {
		conn *net.UDPConn
		err  error
	}
	ch := make(chan result, 1)
	// A goroutine of its own, locked to its thread: if the thread cannot be put back
	// in its namespace, the goroutine ends still locked and the runtime discards the
	// thread, so no other code ever runs in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		conn, err := listenInNetns(ns, addr)
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// listenInNetns runs on a locked thread; it unlocks it only once the thread is back
// in its own namespace.
func listenInNetns(ns string, addr *net.UDPAddr) (*net.UDPConn, error) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer self.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	conn, lerr := net.ListenUDP("udp4", addr)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, err
	}
	runtime.UnlockOSThread()
	return conn, lerr
}
