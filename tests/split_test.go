package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"timegate/tests/harness"
)

// copyRing copies the KE host's ring file to the NTP host's ntsdumpdir, as
// an operator's sync job would (atomically, mode 0600).
func copyRing(t *testing.T, fromDir, toDir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fromDir, "ntskeys.bin"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(toDir, ".ntskeys.tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(toDir, "ntskeys.bin")); err != nil {
		t.Fatal(err)
	}
}

// Issue 12, split deployment without etcd: a KE-only gateway (port 0)
// announces an NTP-only gateway (ntsport 0, ntsntpserver HOST port N) that
// shares its ring file. NTS works end to end (gatectl query -nts does NTS-KE
// with A, then NTP with B); after two rotations on A, B refuses the new
// cookies until it has the new file, which SIGHUP (gatectl reload) loads.
func TestSplitSharedRingFile(t *testing.T) {
	bins := build.Binaries(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	cert, key := harness.WriteCert(t, dirA)
	ntpPort, kePort := harness.FreeUDPPort(t), harness.FreeTCPPort(t)
	a := harness.StartTimegateWith(t, bins.Timegate, fmt.Sprintf("port 0\nntsport %d\nbindaddress 127.0.0.1\n"+
		"ntsservercert %s\nntsserverkey %s\nntsdumpdir %s\nntsntpserver 127.0.0.2 port %d\n", kePort, cert, key, dirA, ntpPort),
		harness.TimegateOptions{Name: "timegate A (KE)", Args: []string{"-state", dirA}})
	copyRing(t, dirA, dirB)
	b := harness.StartTimegateWith(t, bins.Timegate, fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.2\nlocal stratum 4\n"+
		"ratelimit interval -6 burst 32 leak 2\nntsdumpdir %s\n", ntpPort, dirB),
		harness.TimegateOptions{Name: "timegate B (NTP)", Args: []string{"-state", dirB}})

	query := func() (string, error) {
		out, stderr, err := harness.RunGatectl(t, bins.Gatectl, "query", "-nts", "-ca", cert, "-json", "-timeout", "2s",
			fmt.Sprintf("localhost:%d", kePort))
		return out + stderr, err
	}
	if out, err := query(); err != nil || !strings.Contains(out, fmt.Sprintf(`"ntp_server":"127.0.0.2:%d"`, ntpPort)) {
		t.Fatalf("NTS through the split: %v\n%s", err, out)
	}
	for range 2 {
		if _, _, err := a.Gatectl(t, bins.Gatectl, "keys", "nts", "rotate"); err != nil {
			t.Fatal(err)
		}
	}
	// A now seals with a key B never saw: B answers with an NTS NAK.
	if out, err := query(); err == nil {
		t.Fatalf("B opened a cookie under a key it does not have:\n%s", out)
	}
	copyRing(t, dirA, dirB)
	if _, _, err := b.Gatectl(t, bins.Gatectl, "reload"); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 5*time.Second, func() (bool, string) {
		out, err := query()
		return err == nil, out
	})
	if out, _, err := b.Gatectl(t, bins.Gatectl, "keys", "nts", "rotate"); err == nil {
		t.Fatalf("the NTP host rotated a ring it only follows:\n%s", out)
	}
}
