package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"timegate/tests/harness"
)

// Issue 13 item 4: Debian's default chrony.conf and NTPsec ntp.conf and the
// seed's configuration run unmodified. Each file is included whole, after
// the lines that put timegate on a free loopback port (the files themselves
// would serve on the default ports, which parallel tests may hold). The
// gateway starts, answers (unsynchronised: the pools do not resolve here,
// and the sources are unauthenticated), and says at start-up, with the fix,
// that the configuration can never synchronise.
func TestDistributionConfigsRun(t *testing.T) {
	for _, name := range []string{"debian-12-chrony.conf", "debian-12-ntpsec-ntp.conf", "seed.conf"} {
		t.Run(name, func(t *testing.T) {
			path, err := filepath.Abs("../internal/gateway/testdata/compat/" + name)
			if err != nil {
				t.Fatal(err)
			}
			bins := build.Binaries(t)
			port := harness.FreeUDPPort(t)
			conf := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\ninclude %s\n", port, path)
			p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", t.TempDir()}})
			p.WaitLog(t, 0, "never selects the .* unauthenticated source", 10*time.Second)
			p.WaitLog(t, 0, "no usable source: timegate can never synchronise", 10*time.Second)
			if r := gatectlQuery(t, port); r.Stratum != 0 && r.Stratum != 16 {
				t.Errorf("stratum %d, want unsynchronised", r.Stratum)
			}
		})
	}
}

// Issue 13 item 2: `pidfile` holds the daemon's PID once it serves, a second
// instance with the same pidfile refuses to start, and a clean stop removes
// the file.
func TestPIDFile(t *testing.T) {
	pidPath := filepath.Join(t.TempDir(), "timegate.pid")
	p, _ := startLocalTimegate(t, 7, "pidfile "+pidPath)
	b, err := os.ReadFile(pidPath)
	if err != nil || string(b) != fmt.Sprintf("%d\n", p.Pid()) {
		t.Fatalf("pidfile %q, %v; want PID %d", b, err, p.Pid())
	}
	bins := build.Binaries(t)
	port := harness.FreeUDPPort(t)
	conf := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 7\npidfile %s\n", port, pidPath)
	out, err := exec.Command(bins.Timegate, "-config", writeTemp(t, conf), "-state", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another instance is running") {
		t.Errorf("second instance: %v\n%s", err, out)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pidPath); !os.IsNotExist(err) {
		t.Errorf("pidfile left after a clean stop: %v", err)
	}
}

func writeTemp(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "timegate.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
