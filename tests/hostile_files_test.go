package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"timegate/nts"
	"timegate/tests/harness"
)

// Campaign finding (NTS takeover by a local user): with a world-writable
// ntsdumpdir, a key ring planted there by user nobody (mode 0600, its own)
// was loaded by timegate running as root; nobody then held the master keys
// of every cookie and so every client's C2S/S2C keys. Start-up must fail,
// naming the fix, when the ring's directory is writable by others or the
// ring belongs to another user; a root start after dropping to nobody,
// whose ring nobody owns, still starts.
func TestHostileNTSKeyRingPlanted(t *testing.T) {
	harness.RequireRoot(t, "chown a planted key ring to another user")
	bins := build.Binaries(t)
	ring, err := nts.NewKeyRing(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ring.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		dirMode os.FileMode
		owner   int
		user    string
		want    string // in the output; "" = starts
	}{
		{"planted in a 0777 dump directory", 0o777, 65534, "root", "is writable by others"},
		{"own ring in a 0777 dump directory", 0o777, 0, "root", "is writable by others"},
		{"planted in a sticky 1777 dump directory", 0o777 | os.ModeSticky, 65534, "root", "is owned by uid 65534"},
		{"another user's ring in a private directory", 0o700, 65534, "root", "is owned by uid 65534"},
		{"the drop user's ring, root start with user nobody", 0o700, 65534, "nobody", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := publicDir(t)
			dump := filepath.Join(dir, "dump")
			if err := os.Mkdir(dump, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dump, "ntskeys.bin")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(path, c.owner, c.owner); err != nil {
				t.Fatal(err)
			}
			if c.user == "nobody" {
				os.Chown(dump, 65534, 65534)
			}
			if err := os.Chmod(dump, c.dirMode); err != nil {
				t.Fatal(err)
			}
			out, err := runTimegateBriefly(t, bins.Timegate, dir, dump, c.user)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(out, c.want) || !strings.Contains(out, "ntskeys.bin") {
				t.Fatalf("exit %v, want a refusal saying %q:\n%s", err, c.want, out)
			}
		})
	}
}

// runTimegateBriefly starts timegate with NTS on and ntsdumpdir dump, and
// returns its output with its exit error once it exits or, if it is still
// running after a second (it started), after a SIGTERM with nil.
func runTimegateBriefly(t *testing.T, bin, dir, dump, user string) (string, error) {
	t.Helper()
	cert, key := harness.WriteCert(t, dir)
	os.Chmod(key, 0o600)
	if user == "nobody" { // the drop user owns what it re-reads, and is trusted to
		os.Chown(key, 65534, 65534)
	}
	conf := filepath.Join(dir, "timegate.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nlocal stratum 9\nuser %s\n"+
		"ntsservercert %s\nntsserverkey %s\nntsdumpdir %s\nbindcmdaddress %s\n",
		harness.FreeUDPPort(t), harness.FreeTCPPort(t), user, cert, key, dump, filepath.Join(dir, "ctl.sock"))), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-config", conf, "-state", filepath.Join(dir, "state"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			err = fmt.Errorf("exited 0 at once")
		}
		return out.String(), err
	case <-time.After(time.Second):
		cmd.Process.Signal(os.Interrupt)
		<-done
		return out.String(), nil
	}
}

// Campaign findings on reload: a keys file of 524k bad lines made one
// 33 MB log line, a FIFO as the configuration path blocked the signal loop
// (SIGUSR1 no longer handled), and a 200 MB configuration was read whole on
// SIGHUP (RSS 10 → 216 MB). Each reload is refused at once with a bounded
// message, the daemon still handles SIGUSR1, and its memory does not grow.
func TestHostileReloadFiles(t *testing.T) {
	keys := harness.WriteKeys(t, t.TempDir(), harness.NewKey(t, 1, "AES128"))
	p, _, _, _ := ntsTimegate(t, 5, "keyfile "+keys)
	before := readUsage(t, p.Pid())
	// A keys file of 524,288 bad lines (1 MiB, the most a secret may be):
	// one bounded refusal, not a 33 MB log line.
	if err := os.WriteFile(keys, bytes.Repeat([]byte("1\n"), 1<<19), 0o600); err != nil {
		t.Fatal(err)
	}
	from := p.LogSize()
	p.Signal(syscall.SIGHUP)
	p.WaitLog(t, from, `reload rejected.*more errors not shown`, 10*time.Second)
	if n := p.LogSize() - from; n > 16<<10 {
		t.Errorf("%d bytes of log for one bad keys file", n)
	}
	os.Remove(p.ConfPath)
	if err := syscall.Mkfifo(p.ConfPath, 0o600); err != nil {
		t.Fatal(err)
	}
	from = p.LogSize()
	p.Signal(syscall.SIGHUP)
	p.WaitLog(t, from, `reload rejected.*not a regular file`, 5*time.Second)
	from = p.LogSize()
	p.Signal(syscall.SIGUSR1)
	p.WaitLog(t, from, `rotated`, 5*time.Second)
	os.Remove(p.ConfPath)
	f, err := os.Create(p.ConfPath)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(200 << 20) // sparse: 200 MB to read, nothing on disk
	f.Close()
	from = p.LogSize()
	p.Signal(syscall.SIGHUP)
	p.WaitLog(t, from, `reload rejected.*larger than`, 5*time.Second)
	if after := readUsage(t, p.Pid()); after.rssKB > before.rssKB+maxRSSGrowthKB/4 {
		t.Errorf("RSS %d kB → %d kB across a 200 MB reload", before.rssKB, after.rssKB)
	}
}
