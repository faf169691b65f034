package tests

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/symkey"
	"timegate/tests/harness"
)

// procStatus reads the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		m[k] = strings.Join(strings.Fields(v), " ")
	}
	return m
}

// publicDir is a directory other users may enter (t.TempDir's parent is root's).
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "timegate-pub-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	return dir
}

// publicCopy copies the executable src into dir (from publicDir), where users
// other than root may run it, and returns the copy's path.
func publicCopy(t *testing.T, dir, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Issue 11: started as root with `user nobody`, timegate binds its privileged
// sockets, hands its state directory to nobody, then runs as nobody with no
// capabilities and no_new_privs on every ID — and still reloads, rotates its key
// ring (written as nobody) and answers gatectl and NTP.
func TestDropsPrivileges(t *testing.T) {
	harness.RequireRoot(t, "drops privileges")
	bins := build.Binaries(t)
	state := filepath.Join(publicDir(t), "state")
	port, kePort := harness.FreeUDPPort(t), harness.FreeTCPPort(t)
	conf := fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nlocal stratum 9\nuser nobody\n", port, kePort)
	p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", state}, Public: true})
	p.WaitLog(t, 0, `dropped privileges.*"user": "nobody".*"capabilities": "none"`, 5*time.Second)
	st := procStatus(t, p.Pid())
	if st["Uid"] != "65534 65534 65534 65534" || st["Gid"] != "65534 65534 65534 65534" || st["CapEff"] != "0000000000000000" ||
		st["CapPrm"] != "0000000000000000" || st["NoNewPrivs"] != "1" {
		t.Fatalf("after the drop: Uid %q Gid %q CapPrm %q CapEff %q NoNewPrivs %q", st["Uid"], st["Gid"], st["CapPrm"], st["CapEff"], st["NoNewPrivs"])
	}
	if fi, err := os.Stat(filepath.Join(state, "ntskeys.bin")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Fatalf("key ring not handed to nobody: %v", err)
	}
	if _, ok := queryFrom(t, "127.0.0.1", port); !ok {
		t.Fatal("no NTP answer after the drop")
	}
	cert := filepath.Join(state, "selfsigned-cert.pem")
	if out, stderr, err := harness.RunGatectl(t, bins.Gatectl, "query", "-nts", "-timeout", "5s", "-ca", cert,
		"-port", strconv.Itoa(port), fmt.Sprintf("127.0.0.1:%d", kePort)); err != nil {
		t.Fatalf("NTS after the drop: %v\n%s%s", err, out, stderr)
	}
	// The NTS-KE helper (ntsprocesses 1, the default) is started after the
	// drop: the same user, no capabilities, no_new_privs, and it served the
	// query above. Looked at only now: it names itself as it starts, before
	// it serves, and read earlier it could still be called "exe" (make test
	// saw that once under load).
	helper := onlyChild(t, p.Pid())
	if st := procStatus(t, helper); st["Uid"] != "65534 65534 65534 65534" || st["CapEff"] != "0000000000000000" ||
		st["CapPrm"] != "0000000000000000" || st["NoNewPrivs"] != "1" || st["Name"] != "timegate-ntske" {
		t.Fatalf("NTS-KE helper %d: Name %q Uid %q CapPrm %q CapEff %q NoNewPrivs %q", helper, st["Name"], st["Uid"], st["CapPrm"], st["CapEff"], st["NoNewPrivs"])
	}
	if _, _, err := p.Gatectl(t, bins.Gatectl, "keys", "nts", "rotate"); err != nil {
		t.Fatalf("rotation as nobody: %v", err)
	}
	from := p.LogSize()
	p.Signal(syscall.SIGHUP)
	p.WaitLog(t, from, "configuration reloaded", 5*time.Second)
}

// A daemon that systemd starts as user timegate with
// AmbientCapabilities=CAP_NET_BIND_SERVICE keeps that capability, but its
// NTS-KE helper holds none: a non-root process would pass its ambient set
// on across execve, and the helper drops every set first.
func TestHelperHasNoCapabilities(t *testing.T) {
	harness.RequireRoot(t, "starts the daemon as nobody with an ambient capability")
	bins := build.Binaries(t)
	dir := publicDir(t)
	bin := publicCopy(t, dir, bins.Timegate)
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil || os.Chown(state, 65534, 65534) != nil {
		t.Fatalf("state directory: %v", err)
	}
	port, kePort := harness.FreeUDPPort(t), harness.FreeTCPPort(t)
	conf := filepath.Join(dir, "timegate.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nlocal stratum 9\nbindcmdaddress %s/ctl.sock\n",
		port, kePort, state)), 0o644)
	const capNetBindService = 10
	cmd := exec.Command(bin, "-config", conf, "-state", state)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
		AmbientCaps: []uintptr{capNetBindService}}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("timegate output:\n%s", out.String())
		}
	}()
	var helper int
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		kids := children(cmd.Process.Pid)
		if len(kids) == 1 {
			helper = kids[0]
		}
		return len(kids) == 1, fmt.Sprintf("children %v", kids)
	})
	if st := procStatus(t, cmd.Process.Pid); st["CapAmb"] != "0000000000000400" {
		t.Fatalf("control: the daemon has CapAmb %q, want CAP_NET_BIND_SERVICE", st["CapAmb"])
	}
	// The helper drops its capabilities first thing; give it the moment.
	harness.WaitFor(t, 5*time.Second, func() (bool, string) {
		st := procStatus(t, helper)
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
			if st[k] != "0000000000000000" {
				return false, fmt.Sprintf("helper %s %q", k, st[k])
			}
		}
		return true, ""
	})
}

// children lists the child processes of pid.
func children(pid int) []int {
	var kids []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				kids = append(kids, n)
			}
		}
	}
	return kids
}

// onlyChild is the one child process of pid (the NTS-KE helper).
func onlyChild(t *testing.T, pid int) int {
	t.Helper()
	kids := children(pid)
	if len(kids) != 1 {
		t.Fatalf("timegate %d has children %v, want one NTS-KE helper", pid, kids)
	}
	return kids[0]
}

// Issue 11: a drop that would leave the daemon unable to re-read its keys file on
// reload is refused at start, naming the file and the fix, before anything serves.
func TestDropRefusedWhenFilesWouldBeUnreadable(t *testing.T) {
	harness.RequireRoot(t, "drops privileges")
	bins := build.Binaries(t)
	dir := publicDir(t)
	keys := filepath.Join(dir, "keys")
	os.WriteFile(keys, []byte(harness.NewKey(t, 1, "AES128").Line()+"\n"), 0o600) // root's
	confPath := filepath.Join(dir, "timegate.conf")
	os.WriteFile(confPath, []byte(fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 9\nuser nobody\nkeyfile %s\nbindcmdaddress %s\n",
		harness.FreeUDPPort(t), keys, filepath.Join(dir, "ctl.sock"))), 0o644)
	cmd := exec.Command(bins.Timegate, "-config", confPath, "-state", filepath.Join(dir, "state"))
	out, err := cmd.CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), keys+" must stay readable after dropping to user nobody") ||
		!strings.Contains(string(out), "chown nobody "+keys) {
		t.Fatalf("exit %v:\n%s", err, out)
	}
}

// Issue 11: with CAP_SYS_TIME kept (what `clockcontrol on` asks), every thread
// ends with exactly that capability permitted and effective, none inheritable or
// ambient, and no_new_privs. Checked with a probe running internal/privdrop,
// since timegate keeps it only when it would steer the system clock.
func TestDropKeepsOnlySysTime(t *testing.T) {
	harness.RequireRoot(t, "drops privileges")
	b := harness.NewBuild("", "./tests/privprobe")
	t.Cleanup(func() { b.Close() })
	probe := b.Path(t, "privprobe")
	for _, mode := range []string{"keep", "drop"} {
		out, err := exec.Command(probe, "nobody", mode).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
		want := "0000000000000000"
		if mode == "keep" {
			want = "0000000002000000" // 1 << CAP_SYS_TIME (25)
		}
		threads := 0
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			switch f[1] {
			case "Uid:", "Gid:":
				if strings.Join(f[2:], " ") != "65534 65534 65534 65534" {
					t.Errorf("%s: %s", mode, line)
				}
				threads++
			case "CapPrm:", "CapEff:":
				if f[2] != want {
					t.Errorf("%s: %s, want %s", mode, line, want)
				}
			case "CapInh:", "CapAmb:":
				if f[2] != "0000000000000000" {
					t.Errorf("%s: %s", mode, line)
				}
			case "NoNewPrivs:":
				if f[2] != "1" {
					t.Errorf("%s: %s", mode, line)
				}
			}
		}
		if threads < 4 {
			t.Errorf("%s: saw %d thread status lines, want several threads checked:\n%s", mode, threads, out)
		}
	}
}

// A drop-in chrony.conf names chrony's own directories for the drift file and
// dumps: a drop that leaves them unwritable starts anyway (they only make
// restarts better) but says, at start, which directory and the fix.
func TestDropWarnsOfUnwritableDriftDir(t *testing.T) {
	harness.RequireRoot(t, "drops privileges")
	bins := build.Binaries(t)
	dir := publicDir(t)
	rootOnly := filepath.Join(dir, "chrony")
	if err := os.Mkdir(rootOnly, 0o755); err != nil { // root's, as /var/lib/chrony is _chrony's
		t.Fatal(err)
	}
	port := harness.FreeUDPPort(t)
	conf := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 9\nuser nobody\ndriftfile %s\n",
		port, filepath.Join(rootOnly, "chrony.drift"))
	p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", filepath.Join(dir, "state")}, Public: true})
	p.WaitLog(t, 0, `will not be written after the privilege drop.*directory `+rootOnly+` must stay writable.*chown nobody `+rootOnly, 5*time.Second)
	p.WaitLog(t, 0, `dropped privileges.*"user": "nobody"`, 5*time.Second)
	if _, ok := queryFrom(t, "127.0.0.1", port); !ok {
		t.Fatal("no NTP answer after the drop")
	}
}

// Under systemd the keys file is root's in /etc/timegate and the daemon runs
// unprivileged: `gatectl keys sym gen` and `remove`, run as root, edit the
// file themselves when the daemon says it may not, keep the file's owner,
// group and mode (0640 root:nogroup, which the dropped daemon reads), and
// have the daemon reload: a request under the new key is answered under it.
func TestRootGatectlEditsKeysForDroppedDaemon(t *testing.T) {
	harness.RequireRoot(t, "drops privileges")
	bins := build.Binaries(t)
	dir := publicDir(t)
	etc := filepath.Join(dir, "etc")
	os.Mkdir(etc, 0o755) // root's: the daemon, as nobody, may not write here
	keys := filepath.Join(etc, "keys")
	if err := os.WriteFile(keys, []byte("# shared with chrony\n"+harness.NewKey(t, 1, "AES128").Line()+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chown(keys, 0, 65534)
	port := harness.FreeUDPPort(t)
	conf := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 9\nuser nobody\nkeyfile %s\n", port, keys)
	p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", filepath.Join(dir, "state")}, Public: true})
	p.WaitLog(t, 0, `dropped privileges.*"user": "nobody"`, 5*time.Second)

	out, errOut, err := p.Gatectl(t, bins.Gatectl, "keys", "sym", "gen", "-type", "AES256")
	if err != nil {
		t.Fatalf("keys sym gen as root: %v\n%s%s", err, out, errOut)
	}
	line := strings.SplitN(out, "\n", 2)[0]
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "2" || f[1] != "AES256" || !strings.HasPrefix(f[2], "HEX:") {
		t.Fatalf("generated line %q", line)
	}
	data, _ := os.ReadFile(keys)
	if !strings.HasPrefix(string(data), "# shared with chrony\n1 AES128 ") || !strings.HasSuffix(string(data), line+"\n") {
		t.Fatalf("keys file after gen:\n%s", data)
	}
	if fi, err := os.Stat(keys); err != nil || fi.Mode().Perm() != 0o640 || fi.Sys().(*syscall.Stat_t).Uid != 0 || fi.Sys().(*syscall.Stat_t).Gid != 65534 {
		t.Fatalf("keys file owner/mode not kept: %v %v", fi.Mode(), fi.Sys())
	}
	secret, err := hex.DecodeString(strings.TrimPrefix(f[2], "HEX:"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := symkey.NewKey(2, symkey.AES256CMAC, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyedExchange(t, port, key); err != nil {
		t.Fatalf("request under the generated key: %v", err)
	}

	if out, errOut, err := p.Gatectl(t, bins.Gatectl, "keys", "sym", "remove", "2"); err != nil {
		t.Fatalf("keys sym remove as root: %v\n%s%s", err, out, errOut)
	}
	if data, _ := os.ReadFile(keys); strings.Contains(string(data), line) {
		t.Fatalf("key 2 still in the file:\n%s", data)
	}
	if err := keyedExchange(t, port, key); err == nil {
		t.Fatal("a request under the removed key was still answered")
	}
}

// keyedExchange sends one request under key and checks the reply's MAC.
func keyedExchange(t *testing.T, port int, key *symkey.Key) error {
	t.Helper()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := ntp.ClientRequest(nil, 4, 0, ntp.Time64(time.Now().UnixNano())|1)
	c.Write(signed(req, key.ID(), key.Sum(nil, req)))
	c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 1024)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	return replyMAC(key)(buf[:n])
}
