package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// buildTimeout bounds `go build` of the executables (a cold cache compiles
	// zap and x/crypto).
	buildTimeout = 5 * time.Minute
	// gatectlTimeout bounds one gatectl run.
	gatectlTimeout = 30 * time.Second
	// settleTime is how long a daemon with nothing to wait for must stay up to
	// count as started.
	settleTime = 300 * time.Millisecond
)

// Binaries are the built executables.
type Binaries struct {
	Timegate, Gatectl string
}

// Build builds main packages of the module once per test process, the first
// time a test asks for them, into a temporary directory. A test package owns one
// in TestMain, so that no package-level variable is ever written by tests:
//
//	var build *harness.Build // set once in TestMain, read by tests
//
//	func TestMain(m *testing.M) {
//		build = harness.NewBuild("")
//		code := m.Run()
//		build.Close()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) {
//		bins := build.Binaries(t) // builds on first use; later calls wait or reuse
//		...
//	}
//
// A build error fails every test that asks, each with the compiler output.
type Build struct {
	root string
	pkgs []string

	once   sync.Once
	dir    string
	err    error
	output string
}

// NewBuild returns a Build of pkgs (default ./cmd/timegate and ./cmd/gatectl)
// in the module rooted at root ("" finds it with `go env GOMOD` from the working
// directory, which is the test's package directory). The go command comes from
// PATH — `go test` puts its own GOROOT/bin first — and the environment, with
// GOTOOLCHAIN, is inherited.
func NewBuild(root string, pkgs ...string) *Build {
	if len(pkgs) == 0 {
		pkgs = []string{"./cmd/timegate", "./cmd/gatectl"}
	}
	return &Build{root: root, pkgs: pkgs}
}

// Path returns the built executable named name (the last element of its package
// path), building everything on first use.
func (b *Build) Path(t testing.TB, name string) string {
	t.Helper()
	b.once.Do(b.build)
	if b.err != nil {
		t.Fatalf("building %v: %v\n%s", b.pkgs, b.err, b.output)
	}
	p := filepath.Join(b.dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("build of %v made no %s: %v", b.pkgs, name, err)
	}
	return p
}

// Binaries returns timegate and gatectl, building them on first use.
func (b *Build) Binaries(t testing.TB) Binaries {
	t.Helper()
	return Binaries{Timegate: b.Path(t, "timegate"), Gatectl: b.Path(t, "gatectl")}
}

// Close removes the built executables.
func (b *Build) Close() error {
	b.once.Do(func() {}) // a Build never used builds nothing later
	if b.dir == "" {
		return nil
	}
	return os.RemoveAll(b.dir)
}

func (b *Build) build() {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	root := b.root
	if root == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		gomod := strings.TrimSpace(string(out))
		if err != nil || gomod == "" || gomod == os.DevNull {
			b.err = fmt.Errorf("no module root from `go env GOMOD` (%q): %v", gomod, err)
			return
		}
		root = filepath.Dir(gomod)
	}
	if b.dir, b.err = os.MkdirTemp("", "timegate-bin-*"); b.err != nil {
		return
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", b.dir + string(filepath.Separator)}, b.pkgs...)...)
	cmd.Dir = root
	// As `make build`: static and cgo-free, which privilege dropping needs to
	// change every thread's capabilities.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	b.output, b.err = string(out), err
}

// TimegateOptions adjust StartTimegateWith.
type TimegateOptions struct {
	Name string   // label in messages; default "timegate"
	Args []string // more arguments after -config FILE
	Env  []string // more environment, NAME=value
	// Netns runs timegate in this network namespace (`ip netns exec NS`); gatectl
	// reaches it through its Unix control socket regardless.
	Netns string

	// Readiness: the process (or a child in its group) holds these UDP ports
	// bound and these TCP ports listening, and its output matches LogReady.
	// When all three are empty, the ports of the config's `port N` and
	// `ntsport N` directives are waited for; with none of those either, the
	// daemon must merely stay up for 300 ms. Holding a port is checked through
	// /proc, never by sending to it, so readiness does not touch rate limits or
	// counters.
	UDPPorts, TCPPorts []int
	LogReady           string
	ReadyTimeout       time.Duration // default 10 s

	// Public makes the instance's directory (0755) and configuration (0644)
	// readable by other users, for a daemon that drops privileges: it must
	// re-read its configuration as its own user. Without it, and without a
	// `user` line, the daemon is told `user root`, so that tests never depend
	// on whether the machine has a `timegate` user.
	Public bool
}

// StartTimegate writes conf to a file in a fresh directory under /tmp, runs
// `bin -config FILE`, and returns once it serves the ports named in conf. The
// cleanup stops it with SIGTERM and requires exit status 0; its output is in the
// test log when the test failed.
func StartTimegate(t testing.TB, bin, conf string) *Process {
	t.Helper()
	return StartTimegateWith(t, bin, conf, TimegateOptions{})
}

// StartTimegateWith is StartTimegate with options.
func StartTimegateWith(t testing.TB, bin, conf string, o TimegateOptions) *Process {
	t.Helper()
	if o.Name == "" {
		o.Name = "timegate"
	}
	p := newProcess(t, o.Name, "timegate")
	p.ConfPath = filepath.Join(p.Dir, "timegate.conf")
	// Every instance gets its own control socket in its own directory: the
	// default place (/run/timegate for root) would be shared by parallel tests.
	p.ControlSocket = configValue(conf, "bindcmdaddress")
	if p.ControlSocket == "" {
		p.ControlSocket = filepath.Join(p.Dir, "timegate.sock")
		conf += "\nbindcmdaddress " + p.ControlSocket + "\n"
	}
	confMode := os.FileMode(0o600)
	if o.Public {
		confMode = 0o644
		if err := os.Chmod(p.Dir, 0o755); err != nil {
			t.Fatalf("%s: %v", o.Name, err)
		}
	} else if configValue(conf, "user") == "" {
		conf += "user root\n"
	}
	if err := os.WriteFile(p.ConfPath, []byte(conf), confMode); err != nil {
		t.Fatalf("%s: %v", o.Name, err)
	}
	p.path, p.args, p.env = bin, append([]string{"-config", p.ConfPath}, o.Args...), o.Env
	if o.Netns != "" {
		p.path, p.args = inNetns(t, o.Netns, p.path, p.args)
	}
	if len(o.UDPPorts) == 0 && len(o.TCPPorts) == 0 && o.LogReady == "" {
		o.UDPPorts, o.TCPPorts = ConfigPorts(conf)
	}
	p.ready = timegateReadiness(p, o)
	timeout := o.ReadyTimeout
	if timeout == 0 {
		timeout = readyTimeout
	}
	if err := p.start(timeout); err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

func timegateReadiness(p *Process, o TimegateOptions) func() (bool, string, error) {
	var logRe *regexp.Regexp
	if o.LogReady != "" {
		logRe = regexp.MustCompile(o.LogReady)
	}
	var started time.Time
	return func() (bool, string, error) {
		if len(o.UDPPorts) == 0 && len(o.TCPPorts) == 0 && logRe == nil {
			if started.IsZero() {
				started = time.Now()
			}
			return time.Since(started) >= settleTime, "settling", nil
		}
		if ok, status := portsStatus(p.Pid(), o.UDPPorts, o.TCPPorts); !ok {
			return false, status, nil
		}
		if logRe != nil && !logRe.MatchString(lastRun(p.Log())) {
			return false, fmt.Sprintf("output has no match for %q yet", o.LogReady), nil
		}
		return true, "ready", nil
	}
}

// lastRun cuts a log to what the latest start wrote.
func lastRun(log string) string {
	if i := strings.LastIndex(log, "=== harness "); i >= 0 {
		return log[i:]
	}
	return log
}

// ConfigPorts returns the ports of the `port N` (UDP) and `ntsport N` (TCP)
// directives of a chrony-style configuration; 0 (disabled) is left out.
func ConfigPorts(conf string) (udp, tcp []int) {
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n <= 0 {
			continue
		}
		switch f[0] {
		case "port":
			udp = append(udp, n)
		case "ntsport":
			tcp = append(tcp, n)
		}
	}
	return udp, tcp
}

// RunGatectl runs `bin args...` with a 30 s limit and returns its output; err is
// an *exec.ExitError when it exits non-zero. The command and its result go to the
// test log.
func RunGatectl(t testing.TB, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gatectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	t.Logf("$ %s %s → %s\nstdout: %s\nstderr: %s", filepath.Base(bin), strings.Join(args, " "), exitText(err), out.String(), errOut.String())
	return out.String(), errOut.String(), err
}

// configValue returns the argument of the last one-argument `name` line of a
// chrony-style configuration, or "".
func configValue(conf, name string) string {
	v := ""
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			v = f[1]
		}
	}
	return v
}

// Gatectl runs a control-socket command of gatectl against this timegate.
func (p *Process) Gatectl(t testing.TB, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return RunGatectl(t, bin, append([]string{"-socket", p.ControlSocket}, args...)...)
}
