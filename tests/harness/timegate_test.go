package harness_test

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"timegate/tests/harness"
)

// fakeTimegate stands in for cmd/timegate so that the runner is tested without
// the real daemon. It reads `-config FILE` with the directives
//
//	port N            serve UDP on 127.0.0.1:N (echo datagrams)
//	ntsport N         listen on TCP 127.0.0.1:N
//	exit-at-start N   exit at once with status N
//	exit-on-term N    exit with status N on SIGTERM (default 0)
//	leave-child       start `sleep 60` and leave it running on exit
//
// logs "serving" when ready and "reloaded" on SIGHUP.
func fakeTimegate(args []string) int {
	fs := flag.NewFlagSet("fake-timegate", flag.ContinueOnError)
	conf := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	f, err := os.Open(*conf)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	exitOnTerm := 0
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		n := 0
		if len(fields) > 1 {
			n, _ = strconv.Atoi(fields[1])
		}
		switch fields[0] {
		case "port":
			c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", n))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			go func() {
				buf := make([]byte, 1500)
				for {
					k, addr, err := c.ReadFrom(buf)
					if err != nil {
						return
					}
					c.WriteTo(buf[:k], addr)
				}
			}()
		case "ntsport":
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", n))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
		case "exit-at-start":
			fmt.Fprintln(os.Stderr, "fake: exiting at start")
			return n
		case "exit-on-term":
			exitOnTerm = n
		case "leave-child":
			if err := exec.Command("sleep", "60").Start(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	}
	fmt.Fprintln(os.Stderr, "fake: serving")
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			fmt.Fprintln(os.Stderr, "fake: reloaded")
			continue
		}
		fmt.Fprintln(os.Stderr, "fake: stopping")
		return exitOnTerm
	}
	return 0
}

func fakeBin(t *testing.T) string {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var fakeOpts = harness.TimegateOptions{Name: "fake timegate", Env: []string{fakeDaemonEnv}}

func TestStartTimegateLifecycle(t *testing.T) {
	udp, tcp := harness.FreeUDPPort(t), harness.FreeTCPPort(t)
	p := harness.StartTimegateWith(t, fakeBin(t), fmt.Sprintf("port %d\nntsport %d\n", udp, tcp), fakeOpts)

	// Ready means both ports are served, found from the config alone.
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("UDP port not served when StartTimegate returned: %q %v", buf[:n], err)
	}
	if k, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tcp), 2*time.Second); err != nil {
		t.Fatalf("TCP port not served when StartTimegate returned: %v", err)
	} else {
		k.Close()
	}

	from := p.LogSize()
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.WaitLog(t, from, `fake: reloaded`, 5*time.Second)

	pid := p.Pid()
	p.Restart(t)
	if p.Pid() == pid || !p.Running() {
		t.Errorf("after Restart: pid %d (was %d), running %v", p.Pid(), pid, p.Running())
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		t.Errorf("old process %d still exists after Restart: %s", pid, st)
	}
	if n := strings.Count(p.Log(), "fake: serving"); n != 2 {
		t.Errorf("log shows %d starts, want 2:\n%s", n, p.Log())
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartTimegateLogReady(t *testing.T) {
	o := fakeOpts
	o.LogReady = `fake: serving`
	p := harness.StartTimegateWith(t, fakeBin(t), "# no ports\n", o)
	if !strings.Contains(p.Log(), "fake: serving") {
		t.Errorf("returned before the log said serving:\n%s", p.Log())
	}
}

func TestStopReportsBadExit(t *testing.T) {
	p := harness.StartTimegateWith(t, fakeBin(t), fmt.Sprintf("port %d\nexit-on-term 3\n", harness.FreeUDPPort(t)), fakeOpts)
	err := p.Stop()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Stop of a daemon exiting 3 = %v, want its exit status 3", err)
	}
}

func TestStopKillsLeftovers(t *testing.T) {
	p := harness.StartTimegateWith(t, fakeBin(t), fmt.Sprintf("port %d\nleave-child\n", harness.FreeUDPPort(t)), fakeOpts)
	pgid := p.Pid()
	err := p.Stop()
	if err == nil || !strings.Contains(err.Error(), "outlived") {
		t.Fatalf("Stop = %v, want a report of the leftover child", err)
	}
	// The leftover was killed: nothing of the group is alive any more.
	harness.WaitFor(t, 3*time.Second, func() (bool, string) {
		left := groupAlive(pgid)
		return len(left) == 0, fmt.Sprintf("processes %v of group %d alive", left, pgid)
	})
}

func groupAlive(pgid int) []string {
	ents, _ := os.ReadDir("/proc")
	var alive []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			alive = append(alive, e.Name())
		}
	}
	return alive
}

func TestStartTimegateEarlyExit(t *testing.T) {
	r := record(t, func(tb testing.TB) {
		harness.StartTimegateWith(tb, fakeBin(t), "port 1\nexit-at-start 7\n", fakeOpts)
	})
	if !strings.Contains(r.fatal, "exited before it was ready") || !strings.Contains(r.fatal, "exit status 7") {
		t.Errorf("StartTimegate of a daemon that exits: %q", r.fatal)
	}
}

func TestRunGatectl(t *testing.T) {
	out, errOut, err := harness.RunGatectl(t, "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	var ee *exec.ExitError
	if out != "out\n" || errOut != "err\n" || !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("RunGatectl = %q, %q, %v", out, errOut, err)
	}
}

// TestBuild builds a two-command module the way the interop tests build
// cmd/timegate and cmd/gatectl, and checks that the second request reuses the
// first build.
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module: skipped only in -short mode (CI runs it in full)")
	}
	root := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.test/tg\n\ngo 1.27\n")
	for _, name := range []string{"timegate", "gatectl"} {
		write("cmd/"+name+"/main.go", "package main\n\nfunc main() { println(\""+name+" ok\") }\n")
	}
	b := harness.NewBuild(root)
	t.Cleanup(func() { b.Close() })
	bins := b.Binaries(t)
	for _, bin := range []string{bins.Timegate, bins.Gatectl} {
		out, err := exec.Command(bin).CombinedOutput()
		if err != nil || string(out) != filepath.Base(bin)+" ok\n" {
			t.Errorf("%s: %q %v", bin, out, err)
		}
	}
	fi1, _ := os.Stat(bins.Timegate)
	if again := b.Binaries(t); again != bins {
		t.Errorf("second call gave %+v, want %+v", again, bins)
	}
	fi2, _ := os.Stat(bins.Timegate)
	if !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Error("second call rebuilt")
	}
	dir := filepath.Dir(bins.Timegate)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left %s: %v", dir, err)
	}

	broken := harness.NewBuild(root, "./cmd/missing")
	r := record(t, func(tb testing.TB) { broken.Path(tb, "missing") })
	if !strings.Contains(r.fatal, "building") {
		t.Errorf("failed build: %q", r.fatal)
	}
	broken.Close()
}
