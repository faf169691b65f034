package tests

import (
	"fmt"
	"path/filepath"
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
