package tests

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"timegate/internal/report"
	"timegate/nts"
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

// A reload changes ntsratelimit in the running NTS-KE helper (ntsprocesses
// 1, the default): with a burst of 2 a source gets 2 of 4 sessions; after
// `gatectl reload` with a burst of 8 it gets 8 of 10 (a new table: the
// settings changed), and the reload names no restart.
func TestKEHelperRateLimitReload(t *testing.T) {
	bins := build.Binaries(t)
	p, _, kePort, cert := ntsTimegate(t, 5, "ntsratelimit interval 6 burst 2 leak 1")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(kePort))
	conf := &tls.Config{RootCAs: harness.CertPool(t, cert), ServerName: "localhost"}
	served := func(n int) int {
		ok := 0
		for range n {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := nts.Exchange(ctx, nil, addr, conf, []uint16{15}); err == nil {
				ok++
			}
			cancel()
		}
		return ok
	}
	if got := served(4); got != 2 {
		t.Fatalf("burst 2: %d of 4 sessions served", got)
	}
	text, err := os.ReadFile(p.ConfPath)
	if err != nil {
		t.Fatal(err)
	}
	p.WriteConfig(t, strings.Replace(string(text), "burst 2 leak 1", "burst 8 leak 1", 1))
	out, stderr, err := p.Gatectl(t, bins.Gatectl, "reload")
	if err != nil || strings.Contains(out+stderr, "ntsratelimit") {
		t.Fatalf("gatectl reload: %v\n%s%s", err, out, stderr)
	}
	if got := served(10); got != 8 {
		t.Fatalf("after the reload to burst 8: %d of 10 sessions served", got)
	}
}
