package tests

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"timegate/tests/harness"
)

// Issue 2 point 4: with upstreams that cannot be reached (here an NTS
// server whose KE port is closed, as on a machine without Internet access),
// timegate serves unsynchronised and says why — in its log and through
// gatectl query; and (issue 8) gatectl status and sources say it in words:
// unsynchronised for want of a selectable source, the source failing NTS-KE
// with the connection error.
func TestUnreachableUpstreamSaysWhy(t *testing.T) {
	bins := build.Binaries(t)
	port := harness.FreeUDPPort(t)
	closedKE := harness.FreeTCPPort(t) // nothing listens there
	conf := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nratelimit off\nminsources 1\n"+
		"server 127.0.0.1 nts ntsport %d iburst minpoll -4 maxpoll -4\n", port, closedKE)
	p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", t.TempDir()}})
	p.WaitLog(t, 0, `NTS-KE failed`, 10*time.Second)
	var out string
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		o, _, err := harness.RunGatectl(t, bins.Gatectl, "query", "-port", strconv.Itoa(port), "127.0.0.1")
		out = o
		return err != nil && strings.Contains(o, "timegate says: no selectable upstream source"), o
	})
	if !strings.Contains(out, "stratum:         16") || !strings.Contains(out, "refid:           NSRC") {
		t.Errorf("gatectl output:\n%s", out)
	}
	status, _, err := p.Gatectl(t, bins.Gatectl, "status")
	if exitCode(err) != 3 || !strings.Contains(status, "State           : unsynchronised") || !strings.Contains(status, "Reference ID    : NSRC") ||
		!strings.Contains(status, "Why             : no ") {
		t.Errorf("gatectl status (exit %d):\n%s", exitCode(err), status)
	}
	sources, _, err := p.Gatectl(t, bins.Gatectl, "sources")
	if err != nil || !strings.Contains(sources, "ke-failing") || !strings.Contains(sources, "connection refused") {
		t.Errorf("gatectl sources (%v):\n%s", err, sources)
	}
}
