package harness

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// chronycTimeout bounds one chronyc call; on a Unix socket it answers in
// milliseconds.
const chronycTimeout = 10 * time.Second

// Chronyc runs `chronyc -c -h SOCKET args...` against this instance and returns
// its CSV rows. Errors carry chronyc's own message ("503 No such source", ...).
func (c *Chrony) Chronyc(t testing.TB, args ...string) ([][]string, error) {
	t.Helper()
	out, err := c.chronycOutput(args...)
	if err != nil {
		return nil, err
	}
	return splitCSV(out), nil
}

// splitCSV splits chronyc -c output. chronyc quotes nothing: with -c, names are
// addresses and no field holds a comma.
func splitCSV(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, ","))
		}
	}
	return rows
}

// ChronycText runs chronyc without -c (with -n: no DNS), for human-readable logs.
func (c *Chrony) ChronycText(args ...string) (string, error) {
	return c.runChronyc(append([]string{"-n", "-h", c.Socket}, args...))
}

func (c *Chrony) chronycOutput(args ...string) (string, error) {
	return c.runChronyc(append([]string{"-c", "-h", c.Socket}, args...))
}

func (c *Chrony) runChronyc(args []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), chronycTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.chronyc, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String() + " " + stdout.String())
		return "", fmt.Errorf("chronyc %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// logReports writes the human-readable reports of a running instance to the test
// log; a failed test calls it before the daemon is stopped.
func (c *Chrony) logReports(t testing.TB) {
	if !c.Running() {
		return
	}
	var b strings.Builder
	for _, cmd := range []string{"tracking", "sources", "authdata", "ntpdata", "serverstats"} {
		out, err := c.ChronycText(cmd)
		if err != nil {
			out = err.Error() + "\n"
		}
		fmt.Fprintf(&b, "$ chronyc %s\n%s", cmd, out)
	}
	t.Logf("--- %s chronyc reports ---\n%s", c.Name, b.String())
}

func (c *Chrony) report(t testing.TB, args ...string) [][]string {
	t.Helper()
	rows, err := c.Chronyc(t, args...)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return rows
}

// Sources returns `chronyc -c sources`; it fails the test on error.
func (c *Chrony) Sources(t testing.TB) []Source {
	t.Helper()
	s, err := ParseSources(c.report(t, "sources"))
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return s
}

// SourceStats returns `chronyc -c sourcestats`.
func (c *Chrony) SourceStats(t testing.TB) []SourceStats {
	t.Helper()
	s, err := ParseSourceStats(c.report(t, "sourcestats"))
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return s
}

// AuthData returns `chronyc -c authdata`.
func (c *Chrony) AuthData(t testing.TB) []AuthData {
	t.Helper()
	a, err := ParseAuthData(c.report(t, "authdata"))
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return a
}

// Tracking returns `chronyc -c tracking`.
func (c *Chrony) Tracking(t testing.TB) Tracking {
	t.Helper()
	tr, err := ParseTracking(c.report(t, "tracking"))
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return tr
}

// ServerStats returns `chronyc -c serverstats`.
func (c *Chrony) ServerStats(t testing.TB) ServerStats {
	t.Helper()
	s, err := ParseServerStats(c.report(t, "serverstats"))
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return s
}

// Clients returns `chronyc -c clients` (NTP and command columns).
func (c *Chrony) Clients(t testing.TB) []Client {
	t.Helper()
	cl, err := ParseClients(c.report(t, "clients"))
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return cl
}

// NTPData returns `chronyc -c ntpdata ADDR` as a map keyed by NTPDataFields. It
// fails the test on error, including chronyc's "503 No such source"; use
// TryNTPData inside WaitFor.
func (c *Chrony) NTPData(t testing.TB, addr string) map[string]string {
	t.Helper()
	m, err := c.TryNTPData(addr)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return m
}

// TryNTPData is NTPData returning its error.
func (c *Chrony) TryNTPData(addr string) (map[string]string, error) {
	out, err := c.chronycOutput("ntpdata", addr)
	if err != nil {
		return nil, err
	}
	rows := splitCSV(out)
	if len(rows) != 1 {
		return nil, fmt.Errorf("chronyc ntpdata %s: want 1 row, got %d", addr, len(rows))
	}
	return ParseNTPData(rows[0])
}

// WaitSelected waits until this instance has selected the source named addr
// (`*` in sources) with a full reach register (377), and returns it. On loopback
// at minpoll -6 that takes about 2 s.
func (c *Chrony) WaitSelected(t testing.TB, addr string, timeout time.Duration) Source {
	t.Helper()
	var src Source
	WaitFor(t, timeout, func() (bool, string) {
		var ok bool
		src, ok = FindSource(c.Sources(t), addr)
		return ok && src.Selected() && src.Reach == 0xff, fmt.Sprintf("%s: source %s is %+v (listed: %v)", c.Name, addr, src, ok)
	})
	return src
}

// tryTracking is Tracking without failing the test: for waits.
func (c *Chrony) tryTracking() (Tracking, error) {
	out, err := c.chronycOutput("tracking")
	if err != nil {
		return Tracking{}, err
	}
	return ParseTracking(splitCSV(out))
}
