package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"timegate/internal/report"
	"timegate/tests/harness"
)

// Issue 10: NTS-KE runs in a helper process (ntsprocesses 1, the default).
// Killed — as a crash in the code that parses hostile TLS would end it —
// it is started again; the audit trail records the exit with its signal,
// serverstats and the metrics count the restart, and NTS-KE serves again
// with the counters carried over.
func TestKEHelperRestartAudited(t *testing.T) {
	bins := build.Binaries(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	auditLog := filepath.Join(dir, "audit.jsonl")
	port, kePort := harness.FreeUDPPort(t), harness.FreeTCPPort(t)
	conf := fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nlocal stratum 9\nauditlog %s nosync\n", port, kePort, auditLog)
	p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", state}})
	cert := filepath.Join(state, "selfsigned-cert.pem")
	query := func() {
		t.Helper()
		if out, stderr, err := harness.RunGatectl(t, bins.Gatectl, "query", "-nts", "-timeout", "5s", "-ca", cert,
			"-port", strconv.Itoa(port), fmt.Sprintf("127.0.0.1:%d", kePort)); err != nil {
			t.Fatalf("NTS through the helper: %v\n%s%s", err, out, stderr)
		}
	}
	serverStats := func() report.ServerStats {
		t.Helper()
		out, _, err := p.Gatectl(t, bins.Gatectl, "serverstats", "-json")
		var st report.ServerStats
		if err != nil || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("serverstats: %v\n%s", err, out)
		}
		return st
	}
	query()
	// The parent keeps a helper's counters as of its last report: one is
	// asked for here, as a scrape would (and every 5 s otherwise).
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		ke := serverStats().KE
		return ke.Served == 1, fmt.Sprintf("served %d", ke.Served)
	})
	old := onlyChild(t, p.Pid())
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		kids := children(p.Pid())
		return len(kids) == 1 && kids[0] != old, fmt.Sprintf("children %v (the killed helper was %d)", kids, old)
	})
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		data, _ := os.ReadFile(auditLog)
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, `"ntske.helper.exit"`) {
				return strings.Contains(line, fmt.Sprintf(`"pid":"%d"`, old)) && strings.Contains(line, "signal: killed"),
					"record: " + line
			}
		}
		return false, "no ntske.helper.exit record yet"
	})
	query()
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		ke := serverStats().KE
		return ke.Helpers == 1 && ke.HelperRestarts == 1 && ke.Served == 2 && ke.HelperFailuresLost == 0,
			fmt.Sprintf("helpers %d, restarts %d, served %d, failures lost %d (want 1, 1, 2, 0)",
				ke.Helpers, ke.HelperRestarts, ke.Served, ke.HelperFailuresLost)
	})
}
