package keproc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// startChild starts a helper with the control socket as descriptor 3 and
// the listeners after it. The helper runs this very program (through
// /proc/self/exe, which still names the running binary after a package
// upgrade replaced the file), so parent and helper always speak the same
// protocol.
func startChild(path string, listeners []*os.File, onFailure func(Failure), log *zap.Logger) (*child, error) {
	if path == "" {
		path = "/proc/self/exe"
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("keproc: control socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ntske-control"), os.NewFile(uintptr(fds[1]), "ntske-control")
	defer theirs.Close()
	cmd := exec.Command(path)
	cmd.Args = []string{helperName} // its command line in ps; nameProcess sets its name
	cmd.Env = append(helperEnv(os.Environ()), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.ExtraFiles = append([]*os.File{theirs}, listeners...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("keproc: control socket: %w", err)
	}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("keproc: starting the NTS-KE helper: %w", err)
	}
	c := &child{cmd: cmd, conn: conn.(*net.UnixConn), onFailure: onFailure, log: log,
		replies: make(chan []byte, 1), failed: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(c.exited)
	}()
	go c.reader()
	return c, nil
}

// helperEnv is the parent's environment without what systemd addresses to
// the main process alone (sd_notify, socket activation, the watchdog): a
// helper must never speak for the service.
func helperEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "NOTIFY_SOCKET", strings.HasPrefix(name, "LISTEN_"), strings.HasPrefix(name, "WATCHDOG_"), name == childEnv:
			continue
		}
		out = append(out, kv)
	}
	return out
}
