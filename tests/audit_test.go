package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"timegate/audit"
	"timegate/ntp"
	"timegate/tests/harness"
)

// auditConf is a timegate serving its local clock on loopback, NTS off,
// with the audit trail shipped to the collector at shipURL.
func auditConf(port int, logPath, ship string) string {
	return fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 9\nratelimit off\n"+
		"auditlog %s\nauditcheckpoint records 500 interval 5\nauditship %s\n", port, logPath, ship)
}

// lastSeq returns the sequence number of the last complete record.
func lastSeq(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	fi, _ := f.Stat()
	n := min(fi.Size(), 64<<10)
	buf := make([]byte, n)
	f.ReadAt(buf, fi.Size()-n)
	buf = buf[:bytes.LastIndexByte(buf, '\n')+1]
	if len(buf) == 0 {
		return 0
	}
	body := buf[:len(buf)-1]
	r, err := audit.Parse(body[bytes.LastIndexByte(body, '\n')+1:])
	if err != nil {
		t.Fatalf("%s: last record: %v", path, err)
	}
	return r.Seq
}

// waitAuditStart waits for the run's start record, then a little for the
// signal handlers, which are installed after the gateway is built.
func waitAuditStart(t *testing.T, p *harness.Process, from int) {
	t.Helper()
	p.WaitLog(t, from, `audit trail`, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
}

// produce makes the real daemon write audit records (one config.reload
// per SIGHUP it handles; signals sent faster than that merge) until the
// file's last sequence number reaches target.
func produce(t *testing.T, p *harness.Process, path string, target uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for i := 0; ; i++ {
		if i%20 == 0 && lastSeq(t, path) >= target {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s reached seq %d, want %d", path, lastSeq(t, path), target)
		}
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Microsecond)
	}
}

// auditFiles lists a rotated audit log's files in order: the segments
// (their zero-padded names sort by first seq), then the live file.
func auditFiles(t *testing.T, path string) []string {
	t.Helper()
	segs, err := filepath.Glob(path + "-*")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(segs)
	return append(segs, path)
}

// localRecords reads the gateway's audit files: seq → line.
func localRecords(t *testing.T, path string) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	for _, f := range auditFiles(t, path) {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a segment retention deleted since the listing
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			r, err := audit.Parse([]byte(l))
			if err != nil {
				t.Fatalf("local record %q: %v", l, err)
			}
			out[r.Seq] = l
		}
	}
	return out
}

// collected de-duplicates the collector's lines by seq; a duplicate must be
// the same record, byte for byte.
func collected(t *testing.T, lines []string) (map[uint64]string, int) {
	t.Helper()
	out := map[uint64]string{}
	dups := 0
	for _, l := range lines {
		l = strings.TrimSpace(l)
		r, err := audit.Parse([]byte(l))
		if err != nil {
			t.Fatalf("collector holds a line that is not a record: %q: %v", l, err)
		}
		if prev, ok := out[r.Seq]; ok {
			dups++
			if prev != l {
				t.Fatalf("seq %d arrived twice with different content:\n%s\n%s", r.Seq, prev, l)
			}
		}
		out[r.Seq] = l
	}
	return out, dups
}

// missingAt lists local records the collector lacks (or has different).
func missingAt(local, got map[uint64]string) []uint64 {
	var miss []uint64
	for seq, l := range local {
		if got[seq] != l {
			miss = append(miss, seq)
		}
	}
	sort.Slice(miss, func(i, j int) bool { return miss[i] < miss[j] })
	return miss
}

func waitCollected(t *testing.T, col *harness.Rsyslog, logPath string, timeout time.Duration) {
	t.Helper()
	harness.WaitFor(t, timeout, func() (bool, string) {
		local := localRecords(t, logPath)
		got, _ := collected(t, col.Lines())
		miss := missingAt(local, got)
		if len(miss) == 0 {
			return true, ""
		}
		return false, fmt.Sprintf("collector lacks %d of %d records, first seq %d", len(miss), len(local), miss[0])
	})
}

// TestAuditShipRELPOutageAndKill is issue 9's delivery test: 10,000 audit
// records written by the real daemon (config reloads), shipped over RELP to
// a real rsyslogd that is stopped for a while in the middle, with the
// gateway killed with SIGKILL during the outage and restarted. Every
// sequence number reaches the collector, duplicates are identical, and the
// collector's de-duplicated copy verifies as a complete signed audit log.
// The local log rotates at 1 MiB keeping one segment, so shipping crosses
// segments (through the outage and both kills), and retention must hold
// every segment the collector has not acknowledged.
func TestAuditShipRELPOutageAndKill(t *testing.T) {
	bins := build.Binaries(t)
	col := harness.StartRsyslog(t, harness.RsyslogOptions{Transport: "relp"})
	state := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "audit.log")
	conf := auditConf(harness.FreeUDPPort(t), logPath, fmt.Sprintf("relp://127.0.0.1:%d", col.Port)) +
		"auditrotate size 1048576 keep 1\n"
	p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", state}})
	waitAuditStart(t, p, 0)

	produce(t, p, logPath, 3000)
	if err := col.Stop(); err != nil { // the collector goes away...
		t.Fatal(err)
	}
	// Rotations during the outage (by command, beside the size trigger):
	// keep 1 must not delete a segment the collector has not had.
	for _, target := range []uint64{3500, 4000} {
		produce(t, p, logPath, target)
		out, _, err := p.Gatectl(t, bins.Gatectl, "audit", "rotate", "-json")
		var r struct {
			Segment string
			Pruned  []string
		}
		if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.Segment == "" {
			t.Fatalf("gatectl audit rotate: %v %s", err, out)
		}
		if len(r.Pruned) > 0 {
			t.Fatalf("retention deleted %v during the outage: those records never reached the collector", r.Pruned)
		}
	}
	if n := len(auditFiles(t, logPath)) - 1; n < 2 {
		t.Fatalf("%d segments after two rotations", n)
	}
	produce(t, p, logPath, 5000)
	// ...and the gateway is killed while records wait for it.
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Wait(10 * time.Second)
	from := p.LogSize()
	p.Restart(t)
	waitAuditStart(t, p, from)
	produce(t, p, logPath, 7000)
	col.Start(t) // the collector comes back
	produce(t, p, logPath, 8000)
	// Killed again while records are in flight: those arrive twice, with
	// the same seq and content.
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.Wait(10 * time.Second)
	from = p.LogSize()
	p.Restart(t)
	waitAuditStart(t, p, from)
	produce(t, p, logPath, 10000)
	waitCollected(t, col, logPath, 2*time.Minute)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	// The stop record and the final checkpoint were shipped on the way out.
	waitCollected(t, col, logPath, 10*time.Second)

	got, dups := collected(t, col.Lines())
	seqs := make([]uint64, 0, len(got))
	for s := range got {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	if len(seqs) < 10000 || seqs[0] != 1 || seqs[len(seqs)-1] != uint64(len(seqs)) {
		t.Fatalf("collector has %d distinct records, seq %d..%d", len(seqs), seqs[0], seqs[len(seqs)-1])
	}
	t.Logf("collector: %d distinct records, %d duplicates", len(seqs), dups)
	var rotations, prunes int
	for _, l := range got {
		rotations += strings.Count(l, `"type":"audit.segment"`)
		prunes += strings.Count(l, `"type":"audit.segment.prune"`)
	}
	if rotations < 3 || prunes < 1 {
		t.Fatalf("%d rotations and %d segments pruned: the test wants shipping across several", rotations, prunes)
	}
	t.Logf("local log rotated %d times, %d segments pruned after delivery", rotations, prunes)
	for _, l := range strings.Split(p.Log(), "\n") {
		if strings.Contains(l, "audit.ship") {
			t.Log(l)
		}
	}
	// The collector's copy, de-duplicated and in seq order, is the same
	// signed audit log: it verifies like the local file.
	var b strings.Builder
	for _, s := range seqs {
		b.WriteString(got[s] + "\n")
	}
	copyPath := filepath.Join(t.TempDir(), "collected-audit.log")
	os.WriteFile(copyPath, []byte(b.String()), 0o600)
	pub := filepath.Join(state, "auditkey.pub")
	// The local files, what retention left of them, verify as one chain
	// from a rotation boundary.
	for _, files := range [][]string{auditFiles(t, logPath), {copyPath}} {
		args := append([]string{"audit", "verify", "-pub", pub}, files...)
		if out, _, err := harness.RunGatectl(t, bins.Gatectl, args...); err != nil || !strings.Contains(out, "OK") {
			t.Fatalf("verify %v: %v %s", files, err, out)
		}
	}
	// And the collector's own file, duplicates and all.
	out, _, err := harness.RunGatectl(t, bins.Gatectl, "audit", "verify", "-dedup", "-pub", pub, col.OutPath)
	if err != nil || !strings.Contains(out, fmt.Sprintf(", %d duplicates skipped", dups)) {
		t.Fatalf("verify -dedup %s: %v %s", col.OutPath, err, out)
	}
}

// TestAuditShipTLS: syslog over TLS (RFC 5425) to rsyslogd's imtcp with the
// gtls driver, with a test CA. A collector presenting a certificate from
// another CA gets nothing at all; pointed at the right collector, the
// gateway delivers everything, including what it could not deliver before.
func TestAuditShipTLS(t *testing.T) {
	bins := build.Binaries(t)
	dir := t.TempDir()
	ca := harness.NewTestCA(t, dir, "good")
	srvCert, srvKey := ca.Issue(t, "collector", false)
	cliCert, cliKey := ca.Issue(t, "gateway", true)
	evil := harness.NewTestCA(t, dir, "evil")
	evilCert, evilKey := evil.Issue(t, "impostor", false)
	bad := harness.StartRsyslog(t, harness.RsyslogOptions{Transport: "tls", CertPath: evilCert, KeyPath: evilKey})
	good := harness.StartRsyslog(t, harness.RsyslogOptions{Transport: "tls", CertPath: srvCert, KeyPath: srvKey, ClientCA: ca.CertPath})
	ship := func(port int) string {
		return fmt.Sprintf("tls://127.0.0.1:%d ca %s cert %s key %s", port, ca.CertPath, cliCert, cliKey)
	}
	logPath := filepath.Join(t.TempDir(), "audit.log")
	port := harness.FreeUDPPort(t)
	state := t.TempDir()
	p := harness.StartTimegateWith(t, bins.Timegate, auditConf(port, logPath, ship(bad.Port)),
		harness.TimegateOptions{Args: []string{"-state", state}})
	waitAuditStart(t, p, 0)
	produce(t, p, logPath, 40)
	p.WaitLog(t, 0, `TLS handshake with the collector`, 20*time.Second)
	time.Sleep(time.Second)
	if lines := bad.Lines(); len(lines) != 0 {
		t.Fatalf("the impostor collector received %d messages: %q", len(lines), lines[0])
	}
	p.WriteConfig(t, auditConf(port, logPath, ship(good.Port)))
	from := p.LogSize()
	p.Restart(t)
	waitAuditStart(t, p, from)
	produce(t, p, logPath, 500)
	// A collector restart: what was sent in the last 2 s before it went
	// is sent again (TLS has no acknowledgement), nothing is lost.
	if err := good.Stop(); err != nil {
		t.Fatal(err)
	}
	produce(t, p, logPath, 1000)
	good.Start(t)
	produce(t, p, logPath, 1500)
	waitCollected(t, good, logPath, time.Minute)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if lines := bad.Lines(); len(lines) != 0 {
		t.Fatalf("the impostor collector received %d messages", len(lines))
	}
	// The collector's file verifies as the complete log (the stop record
	// may still be in its 2 s window: -live).
	out, _, err := harness.RunGatectl(t, bins.Gatectl, "audit", "verify", "-dedup", "-live", "-pub", filepath.Join(state, "auditkey.pub"), good.OutPath)
	if err != nil || !strings.Contains(out, ": OK: ") {
		t.Fatalf("verify %s: %v %s", good.OutPath, err, out)
	}
}

// TestAuditEpisodes: a burst of requests over the rate limit becomes a
// handful of ratelimit.episode records for the source (one per interval),
// never one per packet, and their counts add up to the requests that got
// no answer.
func TestAuditEpisodes(t *testing.T) {
	bins := build.Binaries(t)
	port := harness.FreeUDPPort(t)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	conf := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 9\nratelimit interval 4 burst 2 leak 2\n"+
		"auditlog %s\nauditepisodes 1\n", port, logPath)
	p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", t.TempDir()}})
	waitAuditStart(t, p, 0)
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 500
	replies := make(chan int)
	go func() {
		n := 0
		buf := make([]byte, 1024)
		for {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Read(buf); err != nil {
				replies <- n
				return
			}
			n++
		}
	}()
	for i := range sent {
		c.Write(ntp.ClientRequest(nil, 4, 3, ntp.Time64(i+1)))
		time.Sleep(time.Millisecond)
	}
	answered := <-replies
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	episodes, total := 0, 0
	for _, l := range localRecords(t, logPath) {
		r, _ := audit.Parse([]byte(l))
		if r.Type != audit.TypeRateLimited {
			continue
		}
		episodes++
		n, _ := strconv.Atoi(r.Details["count"])
		total += n
		if r.Subject.Prefix != "127.0.0.1/32" || r.Details["reason"] != "rate-limited" {
			t.Errorf("episode %s", l)
		}
	}
	t.Logf("%d requests, %d answered, %d refusals in %d episode records", sent, answered, total, episodes)
	if episodes == 0 || episodes > 5 || total+answered != sent {
		t.Fatalf("%d episodes with %d refusals; %d answered of %d", episodes, total, answered, sent)
	}
}

// TestAuditShipRELPOverTLS: RELP with acknowledgements inside TLS
// (rsyslog imrelp tls="on"), mutual authentication with a test CA.
func TestAuditShipRELPOverTLS(t *testing.T) {
	bins := build.Binaries(t)
	dir := t.TempDir()
	ca := harness.NewTestCA(t, dir, "good")
	srvCert, srvKey := ca.Issue(t, "collector", false)
	cliCert, cliKey := ca.Issue(t, "gateway", true)
	col := harness.StartRsyslog(t, harness.RsyslogOptions{Transport: "relp+tls", CertPath: srvCert, KeyPath: srvKey, ClientCA: ca.CertPath})
	logPath := filepath.Join(t.TempDir(), "audit.log")
	ship := fmt.Sprintf("relp+tls://127.0.0.1:%d ca %s cert %s key %s", col.Port, ca.CertPath, cliCert, cliKey)
	p := harness.StartTimegateWith(t, bins.Timegate, auditConf(harness.FreeUDPPort(t), logPath, ship),
		harness.TimegateOptions{Args: []string{"-state", t.TempDir()}})
	waitAuditStart(t, p, 0)
	produce(t, p, logPath, 200)
	waitCollected(t, col, logPath, time.Minute)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	waitCollected(t, col, logPath, 10*time.Second)
}
