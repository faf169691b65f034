package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/tests/harness"
)

// exitCode is a gatectl run's exit status (0 for success).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// Issue 8, black box: the built gatectl against the built daemon over its control
// socket — status, serverstats, clients, cert, symmetric keys, reload warnings, and a
// reload that adds an upstream server, which the gateway then synchronises to.
func TestGatectlAgainstDaemon(t *testing.T) {
	bins := build.Binaries(t)
	dir := t.TempDir()
	key := harness.NewKey(t, 1, "AES128")
	upKeys := harness.WriteKeys(t, t.TempDir(), key)
	// The upstream: a second timegate serving its local clock, keyed.
	upPort := harness.FreeUDPPort(t)
	harness.StartTimegateWith(t, bins.Timegate, fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 5\nkeyfile %s\nratelimit off\n", upPort, upKeys),
		harness.TimegateOptions{Name: "upstream timegate", Args: []string{"-state", t.TempDir()}})

	cert, certKey := harness.WriteCert(t, dir)
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte(key.Line()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, kePort := harness.FreeUDPPort(t), harness.FreeTCPPort(t)
	conf := fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nntsservercert %s\nntsserverkey %s\nkeyfile %s\nminsources 1\n", port, kePort, cert, certKey, keys)
	p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", dir}})
	ctl := func(args ...string) (string, int) {
		out, _, err := p.Gatectl(t, bins.Gatectl, args...)
		return out, exitCode(err)
	}

	out, code := ctl("status")
	if code != 3 || !strings.Contains(out, "State           : unsynchronised") || !strings.Contains(out, "no upstream sources are configured") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	if _, ok := queryFrom(t, "127.0.0.1", port); !ok {
		t.Fatal("no NTP answer")
	}
	var st struct {
		NTP struct {
			Received uint64
			Answered map[string]uint64 `json:"answered_by_auth"`
		}
	}
	out, code = ctl("serverstats", "-json")
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.NTP.Received < 1 || st.NTP.Answered["none"] < 1 {
		t.Fatalf("serverstats: exit %d %v\n%s", code, err, out)
	}
	if out, code = ctl("clients"); code != 0 || !strings.Contains(out, "127.0.0.1/32") {
		t.Fatalf("clients: exit %d\n%s", code, out)
	}
	out, code = ctl("cert", "show", "-json")
	var crt struct {
		CertFile    string   `json:"cert_file"`
		DNSNames    []string `json:"dns_names"`
		ExpiresIn   float64  `json:"expires_in_s"`
		SHA256      string   `json:"sha256"`
		ChainLength int      `json:"chain_length"`
	}
	if err := json.Unmarshal([]byte(out), &crt); code != 0 || err != nil || crt.CertFile != cert || len(crt.SHA256) != 64 || crt.ExpiresIn <= 0 || crt.ChainLength != 1 {
		t.Fatalf("cert show: exit %d %v\n%s", code, err, out)
	}

	// Symmetric keys: gen appends an AES-CMAC key with mode 0600; remove takes it out.
	out, code = ctl("keys", "sym", "gen", "-type", "AES256")
	if code != 0 || !strings.HasPrefix(out, "2 AES256 HEX:") {
		t.Fatalf("keys sym gen: exit %d\n%s", code, out)
	}
	data, _ := os.ReadFile(keys)
	if fi, _ := os.Stat(keys); !strings.Contains(string(data), strings.SplitN(out, "\n", 2)[0]) || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file %v:\n%s", fi.Mode(), data)
	}
	if out, code = ctl("keys", "sym", "list"); code != 0 || !strings.Contains(out, "2   AES256") {
		t.Fatalf("keys sym list: exit %d\n%s", code, out)
	}
	if _, code = ctl("keys", "sym", "remove", "2"); code != 0 {
		t.Fatalf("keys sym remove: exit %d", code)
	}
	if data, _ := os.ReadFile(keys); strings.Contains(string(data), "AES256") || !strings.Contains(string(data), key.Line()) {
		t.Fatalf("after remove:\n%s", data)
	}

	// A reload that moves the port warns that it needs a restart; one that adds a
	// server line applies it at once.
	p.WriteConfig(t, strings.Replace(conf, fmt.Sprintf("port %d\n", port), fmt.Sprintf("port %d\n", port+1), 1)+
		fmt.Sprintf("server 127.0.0.1 port %d key 1 iburst minpoll -4 maxpoll -4\n", upPort))
	out, code = ctl("reload")
	if code != 0 || !strings.Contains(out, "timegate.conf:1: port changed: takes effect only after a restart") {
		t.Fatalf("reload: exit %d\n%s", code, out)
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		out, code := ctl("status")
		return code == 0 && strings.Contains(out, "State           : synchronised") && strings.Contains(out, "Stratum         : 6"), out
	})
	out, code = ctl("sources")
	if code != 0 || !strings.Contains(out, "selected") || !strings.Contains(out, "key 1 AES128") {
		t.Fatalf("sources: exit %d\n%s", code, out)
	}
	// The daemon's own view of its (now changed) file.
	if out, code = ctl("config", "check"); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("config check: exit %d\n%s", code, out)
	}
}

// runAs runs gatectl as uid:gid with no supplementary groups.
func runAs(t *testing.T, bin string, uid, gid uint32, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	t.Logf("as %d:%d: gatectl %s → %v\n%s", uid, gid, strings.Join(args, " "), err, out)
	return string(out), exitCode(err)
}

// Issue 8: a caller outside root, the daemon's user and the admin group (`cmdgroup`)
// is refused — by the socket's mode, and by SO_PEERCRED even when the mode is wrong.
func TestControlSocketRefusesOthers(t *testing.T) {
	harness.RequireRoot(t, "runs gatectl as other users")
	bins := build.Binaries(t)
	// A copy of gatectl that other users may execute, in a directory they may enter.
	pub := publicDir(t)
	gatectl := publicCopy(t, pub, bins.Gatectl)
	sockDir := filepath.Join(pub, "run")
	sock := filepath.Join(sockDir, "timegate.sock")
	port := harness.FreeUDPPort(t)
	p := harness.StartTimegateWith(t, bins.Timegate, fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 9\nbindcmdaddress %s\ncmdgroup nogroup\n", port, sock),
		harness.TimegateOptions{Args: []string{"-state", t.TempDir()}})
	os.Chmod(sockDir, 0o755)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != 65534 {
		t.Fatalf("socket %v %+v: want mode 0660, group nogroup", err, fi)
	}
	const stranger = 4242
	if out, code := runAs(t, gatectl, stranger, stranger, "-socket", sock, "status"); code != 4 || !strings.Contains(out, "permission denied") {
		t.Fatalf("stranger: exit %d\n%s", code, out)
	}
	if out, code := runAs(t, gatectl, stranger, 65534, "-socket", sock, "status"); code != 0 || !strings.Contains(out, "Stratum         : 9") {
		t.Fatalf("member of cmdgroup: exit %d\n%s", code, out)
	}
	// A socket made world-writable by mistake still refuses strangers.
	os.Chmod(sock, 0o666)
	from := p.LogSize()
	if out, code := runAs(t, gatectl, stranger, stranger, "-socket", sock, "keys", "nts", "list"); code != 4 || !strings.Contains(out, "not allowed") {
		t.Fatalf("stranger through a 0666 socket: exit %d\n%s", code, out)
	}
	p.WaitLog(t, from, `control connection refused.*"uid": 4242`, 5*time.Second)
}

// Issue 8: a local flood of control connections — far over the connection cap, some
// held open silently — does not stop NTP answers, and the socket serves again after.
func TestControlFloodKeepsNTP(t *testing.T) {
	bins := build.Binaries(t)
	port := harness.FreeUDPPort(t)
	p := harness.StartTimegateWith(t, bins.Timegate, fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 9\nratelimit off\n", port),
		harness.TimegateOptions{Args: []string{"-state", t.TempDir()}})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var conns, busy atomic.Int64
	for range 32 {
		wg.Go(func() {
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			buf := make([]byte, 256)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("unix", p.ControlSocket)
				if err != nil {
					continue
				}
				conns.Add(1)
				if len(held) < 2 {
					held = append(held, c) // silent: holds a slot until the deadline
					continue
				}
				c.SetDeadline(time.Now().Add(time.Second))
				if n, _ := c.Read(buf); strings.Contains(string(buf[:n]), `"busy"`) {
					busy.Add(1)
				}
				c.Close()
			}
		})
	}
	// Each query may wait 2 s: a busy 2-core machine shares its CPUs with the
	// flood, so this checks that NTP is answered, not how fast.
	answered := 0
	for range 50 {
		if ntpAnswered(t, port, 2*time.Second) {
			answered++
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d control connections, %d told busy; %d of 50 NTP queries answered", conns.Load(), busy.Load(), answered)
	if busy.Load() == 0 {
		t.Fatalf("the flood never reached the connection cap (%d connections)", conns.Load())
	}
	if answered != 50 {
		t.Fatalf("only %d of 50 NTP queries answered during the control flood", answered)
	}
	harness.WaitFor(t, 15*time.Second, func() (bool, string) {
		out, _, err := p.Gatectl(t, bins.Gatectl, "status")
		return err == nil, out
	})
}

// ntpAnswered sends one client request to 127.0.0.1:port and reports whether
// the reply to it came within timeout.
func ntpAnswered(t *testing.T, port int, timeout time.Duration) bool {
	t.Helper()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nonce := ntp.Time64(time.Now().UnixNano()) | 1
	c.Write(ntp.ClientRequest(nil, 4, 0, nonce))
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 1024)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return false
		}
		if h, err := ntp.DecodeHeader(buf[:n]); err == nil && h.Origin == nonce {
			return true
		}
	}
}
