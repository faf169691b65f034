package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// stopTimeout is how long a daemon gets between SIGTERM and SIGKILL.
	stopTimeout = 10 * time.Second
	// readyTimeout is the default wait for a daemon to serve.
	readyTimeout = 10 * time.Second
	// logDumpLimit caps how much of a log a failed test prints (the tail is kept).
	logDumpLimit = 64 << 10
	// pollInterval paces readiness checks and WaitFor.
	pollInterval = 50 * time.Millisecond
)

// Process is a daemon started by the harness: chronyd or timegate. It runs in its
// own process group (so helpers it forks can be found and never outlive it), with
// stdout and stderr appended to LogPath, and gets SIGTERM if the test process
// dies. The test's cleanup stops it, requires exit status 0 and no leftover
// process in its group, prints its log if the test failed, and removes Dir.
type Process struct {
	Name     string // label in messages: "chronyd server", "timegate"
	Dir      string // private directory under /tmp, removed at cleanup
	ConfPath string // configuration file, inside Dir
	LogPath  string // stdout+stderr of every run, inside Dir
	// ControlSocket is timegate's control socket (its bindcmdaddress).
	ControlSocket string

	path  string
	args  []string
	env   []string
	ready func() (bool, string, error)
	// diesBySIGTERM: the daemon ends a clean stop by re-raising SIGTERM
	// (etcd does), so "terminated by SIGTERM" is its exit status 0.
	diesBySIGTERM bool

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has been reaped
	waitErr  error
	observed bool // the test saw this run end (Stop or Wait)
}

// newProcess makes the directory and registers the cleanup; start runs it.
func newProcess(t testing.TB, name, dirPrefix string) *Process {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", dirPrefix+"-*")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := &Process{Name: name, Dir: dir, LogPath: filepath.Join(dir, "output.log")}
	t.Cleanup(func() { p.cleanup(t) })
	return p
}

func (p *Process) cleanup(t testing.TB) {
	p.mu.Lock()
	started, observed := p.cmd != nil, p.observed
	p.mu.Unlock()
	if started && !observed {
		if err := p.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	}
	if t.Failed() {
		t.Logf("--- %s log (%s) ---\n%s--- end of %s log ---", p.Name, p.LogPath, tail(p.Log(), logDumpLimit), p.Name)
		if os.Getenv("HARNESS_KEEP") != "" {
			t.Logf("HARNESS_KEEP set: keeping %s", p.Dir)
			return
		}
	}
	os.RemoveAll(p.Dir)
}

// start runs the command once and waits for readiness.
func (p *Process) start(timeout time.Duration) error {
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	fmt.Fprintf(logf, "=== harness %s: starting %s %s\n", time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: helpers (chronyd's NTS-KE workers) can be found and
	// killed with it. Pdeathsig: a test binary killed by -timeout leaves no daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.waitErr, p.observed = cmd, done, nil, false
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return p.waitReady(timeout)
}

func (p *Process) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	status := "no readiness check ran"
	for {
		select {
		case <-p.done:
			p.mu.Lock()
			err := p.waitErr
			p.observed = true
			p.mu.Unlock()
			return fmt.Errorf("%s exited before it was ready (%v); last status: %s", p.Name, exitText(err), status)
		default:
		}
		if p.ready == nil {
			return nil
		}
		ok, s, err := p.ready()
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		if ok {
			return nil
		}
		status = s
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %s", p.Name, timeout, status)
		}
		time.Sleep(pollInterval)
	}
}

// Pid returns the process id of the current run.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the current run has not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the daemon (SIGHUP to reload, for example).
func (p *Process) Signal(sig syscall.Signal) error {
	pid := p.Pid()
	if pid == 0 {
		return fmt.Errorf("%s: not started", p.Name)
	}
	return syscall.Kill(pid, sig)
}

// Stop sends SIGTERM, waits up to 10 s for the daemon to exit (then kills its
// process group), and returns an error unless it exited with status 0 and left
// no live process in its group. Stopping a stopped daemon returns nil.
func (p *Process) Stop() error {
	p.mu.Lock()
	cmd, done, observed := p.cmd, p.done, p.observed
	p.mu.Unlock()
	if cmd == nil || observed {
		return nil
	}
	pid := cmd.Process.Pid
	select {
	case <-done:
		p.mu.Lock()
		err := p.waitErr
		p.observed = true
		p.mu.Unlock()
		return fmt.Errorf("%s (pid %d) had exited before it was stopped: %s", p.Name, pid, exitText(err))
	default:
	}
	syscall.Kill(pid, syscall.SIGTERM)
	var errs []error
	select {
	case <-done:
	case <-time.After(stopTimeout):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-done
		errs = append(errs, fmt.Errorf("%s (pid %d) ignored SIGTERM for %v and was killed", p.Name, pid, stopTimeout))
	}
	p.mu.Lock()
	waitErr := p.waitErr
	p.observed = true
	p.mu.Unlock()
	if ee, ok := waitErr.(*exec.ExitError); ok && p.diesBySIGTERM {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			waitErr = nil
		}
	}
	if waitErr != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s (pid %d) after SIGTERM: %w, want exit status 0", p.Name, pid, waitErr))
	}
	if left := waitGroupGone(pid, 3*time.Second); len(left) > 0 {
		syscall.Kill(-pid, syscall.SIGKILL)
		errs = append(errs, fmt.Errorf("%s (pid %d): processes %v of its group outlived it and were killed", p.Name, pid, left))
	}
	return errors.Join(errs...)
}

// Wait waits up to timeout for a daemon that is expected to exit by itself and
// returns its exit error (nil for status 0). The cleanup does not complain about
// a run that Wait saw end.
func (p *Process) Wait(timeout time.Duration) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return fmt.Errorf("%s: not started", p.Name)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %v", p.Name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observed = true
	return p.waitErr
}

// Restart stops the daemon (requiring a clean exit), starts it again with the
// same command line and configuration file, and waits until it serves again.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	if err := p.Stop(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := p.start(readyTimeout); err != nil {
		t.Fatalf("restart: %v", err)
	}
}

// WriteConfig replaces the configuration file atomically (for reload tests; the
// daemon is not signalled).
func (p *Process) WriteConfig(t testing.TB, text string) {
	t.Helper()
	if err := writeFileAtomic(p.ConfPath, []byte(text), 0o644); err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
}

// Log returns everything the daemon has written so far, across restarts.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// LogSize returns the current length of the log, to wait for lines written
// after some event with WaitLog.
func (p *Process) LogSize() int { return len(p.Log()) }

// WaitLog waits until the log written after byte offset from matches the
// regular expression pattern, and returns the first match.
func (p *Process) WaitLog(t testing.TB, from int, pattern string, timeout time.Duration) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	var match string
	WaitFor(t, timeout, func() (bool, string) {
		log := p.Log()
		if from > len(log) {
			from = len(log)
		}
		match = re.FindString(log[from:])
		return match != "", fmt.Sprintf("%s log has no match for %q after offset %d", p.Name, pattern, from)
	})
	return match
}

// WaitFor calls cond every 50 ms until it returns true, and fails the test with
// cond's last status when timeout passes first.
func WaitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, status := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", timeout, status)
		}
		time.Sleep(pollInterval)
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[... " + strconv.Itoa(len(s)-n) + " bytes cut ...]\n" + s[len(s)-n:]
}
