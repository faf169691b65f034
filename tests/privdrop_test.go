package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	if _, _, err := p.Gatectl(t, bins.Gatectl, "keys", "nts", "rotate"); err != nil {
		t.Fatalf("rotation as nobody: %v", err)
	}
	from := p.LogSize()
	p.Signal(syscall.SIGHUP)
	p.WaitLog(t, from, "configuration reloaded", 5*time.Second)
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
