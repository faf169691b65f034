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
// namespaces. The upstream side is 10.77.0.0/24, the downstream side 10.77.1.0/24,
// and the middle namespace routes between them.
const (
	DelayLineUpAddr   = "10.77.0.1"
	DelayLineDownAddr = "10.77.1.2"
	delayLineUpGW     = "10.77.0.254"
	delayLineDownGW   = "10.77.1.254"
	// DelayLineNet covers both sides (for a server's `allow`).
	DelayLineNet = "10.77.0.0/16"
	// delayLineTable routes what arrives from either veth into the TUN device.
	delayLineTable = "177"
)

// DelayLineOptions adjust StartDelayLine.
type DelayLineOptions struct {
	Delay time.Duration // each way (0: the path through the TUN device alone)
	Queue int           // packets held at once; default 256
	// RTPrio runs the line's process SCHED_FIFO at this priority (0: ordinary
	// scheduling); on a busy machine it cuts its wake-up latency.
	RTPrio int
	// UpAddrs are more addresses (in 10.77.0.0/24) for the upstream namespace.
	UpAddrs []string
}

// DelayLine is a path between two network namespaces, Up and Down, through a third,
// Mid, where every packet from one to the other passes through a TUN device and a
// delayline process (tests/delayline) that writes it back Delay later:
//
//	Up (10.77.0.1, UpAddrs) ==veth== Mid (ip_forward, rp_filter 0, TUN) ==veth== Down (10.77.1.2)
//
// In Mid, a policy rule sends whatever arrives on either veth to a table whose only
// route is the TUN device; what the process writes back arrives on the TUN, so it
// misses that rule and the main table's connected routes forward it to the far veth.
// Cleanup stops the process (exit status 0 required), then deletes the namespaces,
// which removes the veths and the TUN device with them.
type DelayLine struct {
	Up, Mid, Down string // namespace names (`ip netns exec NAME`, /var/run/netns/NAME)
	Tun           string
	Delay         time.Duration
	Proc          *Process
}

// StartDelayLine builds the namespaces and starts bin (the built tests/delayline) in
// the middle one. It needs root, ip(8) and /dev/net/tun: without one of them the test
// is skipped, or under CI=true fails.
func StartDelayLine(t testing.TB, bin string, o DelayLineOptions) *DelayLine {
	t.Helper()
	RequireRoot(t, "network namespaces and a TUN device")
	ip := RequireBinary(t, "ip")
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		missing(t, "the delay line needs a TUN device: %v (Linux: CONFIG_TUN; in a container, pass /dev/net/tun)", err)
	}
	if o.Queue == 0 {
		o.Queue = 256
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	d := &DelayLine{Up: "tgdl-" + id + "-up", Mid: "tgdl-" + id + "-mid", Down: "tgdl-" + id + "-dn",
		Tun: "tgdlt" + id, Delay: o.Delay}
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
	sysctl(d.Mid, "net.ipv4.ip_forward", "1")
	for _, dev := range []string{"all", "default"} {
		sysctl(d.Mid, "net.ipv4.conf."+dev+".rp_filter", "0")
	}
	run("-n", d.Mid, "tuntap", "add", "dev", d.Tun, "mode", "tun")
	for _, c := range [][]string{
		{"-n", d.Up, "link", "set", "lo", "up"},
		{"-n", d.Mid, "link", "set", "lo", "up"},
		{"-n", d.Down, "link", "set", "lo", "up"},
		{"-n", d.Up, "addr", "add", DelayLineUpAddr + "/24", "dev", vu},
		{"-n", d.Down, "addr", "add", DelayLineDownAddr + "/24", "dev", vd},
		{"-n", d.Mid, "addr", "add", delayLineUpGW + "/24", "dev", vmu},
		{"-n", d.Mid, "addr", "add", delayLineDownGW + "/24", "dev", vmd},
		{"-n", d.Up, "link", "set", vu, "up"},
		{"-n", d.Down, "link", "set", vd, "up"},
		{"-n", d.Mid, "link", "set", vmu, "up"},
		{"-n", d.Mid, "link", "set", vmd, "up"},
		{"-n", d.Mid, "link", "set", d.Tun, "mtu", "1500", "up"},
		{"-n", d.Up, "route", "add", "default", "via", delayLineUpGW},
		{"-n", d.Down, "route", "add", "default", "via", delayLineDownGW},
		{"-n", d.Mid, "route", "add", "default", "dev", d.Tun, "table", delayLineTable},
		{"-n", d.Mid, "rule", "add", "iif", vmu, "lookup", delayLineTable, "pref", "100"},
		{"-n", d.Mid, "rule", "add", "iif", vmd, "lookup", delayLineTable, "pref", "101"},
	} {
		run(c...)
	}
	for _, a := range o.UpAddrs {
		run("-n", d.Up, "addr", "add", a+"/24", "dev", vu)
	}
	for _, dev := range []string{vmu, vmd, d.Tun} {
		sysctl(d.Mid, "net.ipv4.conf."+dev+".rp_filter", "0")
	}

	p := newProcess(t, "delayline", "delayline")
	p.path, p.args = inNetns(t, d.Mid, bin, []string{"-dev", d.Tun, "-delay", o.Delay.String(), "-queue", strconv.Itoa(o.Queue),
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
	if len(f) != 9 {
		return s, fmt.Errorf("%d fields, want 9", len(f))
	}
	counts := []*uint64{&s.Received, &s.Forwarded, &s.Dropped, &s.Oversize, &s.WriteErrors, &s.MaxQueued}
	names := []string{"received", "forwarded", "dropped", "oversize", "writeerrors", "maxqueued", "latemean", "latemax", "late50us"}
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
