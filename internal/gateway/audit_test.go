package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/audit"
	iaudit "timegate/internal/audit"
	"timegate/internal/config"
)

// gatewayFromText builds a gateway from configuration text written to
// dir/t.conf, its state in dir/state, and returns it with the file's path.
func gatewayFromText(t *testing.T, dir, text string) (*Gateway, string) {
	t.Helper()
	confPath := filepath.Join(dir, "t.conf")
	if err := os.WriteFile(confPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(confPath)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{ConfigPath: confPath, StateDir: filepath.Join(dir, "state"), Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return g, confPath
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestAuditTrailWiring runs a gateway with NTS and the audit trail and
// checks that what it does lands in the signed file: start, certificate
// and key ring load, a control command recorded through Audit(), an
// accepted and a rejected reload, a key rotation, the stop.
func TestAuditTrailWiring(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log", "audit.log")
	text := fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nlocal stratum 5\nauditlog %s\nauditkey %s ed25519\n",
		freePort(t, "udp"), freePort(t, "tcp"), logPath, filepath.Join(dir, "auditkey"))
	g, confPath := gatewayFromText(t, dir, text)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	g.Audit().Record(audit.Event{Type: audit.TypeControlCommand, Outcome: audit.OutcomeOK,
		Subject: audit.Subject{User: "uid 0"}, Details: map[string]string{"command": "status"}})
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(confPath, []byte(text+"frobnicate\n"), 0o600)
	if err := g.Reload(); err == nil {
		t.Fatal("bad config accepted")
	}
	if err := g.RotateNTSKeys(false); err != nil {
		t.Fatal(err)
	}
	if a := g.Status().Audit; a == nil || a.File != logPath || a.LastSeq == 0 || a.DiskBytes == 0 || a.Segments != 0 ||
		a.WriteFailing || a.Shipping != nil {
		t.Fatalf("status of the audit trail: %+v", a)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		r, err := audit.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != audit.TypeCheckpoint {
			got = append(got, string(r.Type)+"/"+string(r.Outcome))
		}
	}
	want := []string{"gateway.start/ok", "key.import/ok", "cert.load/ok", "control.command/ok",
		"config.reload/accepted", "config.reload/rejected", "key.rotate/ok", "gateway.stop/ok"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("records %v\nwant %v", got, want)
	}
	pubText, _ := os.ReadFile(filepath.Join(dir, "auditkey.pub"))
	pub, err := audit.ParsePublicKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{Key: &pub}); err != nil {
		t.Fatal(err)
	}
}

// TestAuditStatusShipping: with auditship, status and the metrics show the
// collector, and one that refuses connections shows as disconnected with
// the error and a growing backlog.
func TestAuditStatusShipping(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	collector := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")) // nothing listens there
	text := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 5\n"+
		"auditlog %s\nauditkey %s ed25519\nauditship relp://%s\n",
		freePort(t, "udp"), logPath, filepath.Join(dir, "auditkey"), collector)
	cfg, err := config.Parse("t.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = netip.MustParseAddrPort("127.0.0.1:0") // the directive wants a fixed port
	g, err := New(cfg, Options{StateDir: filepath.Join(dir, "state"), Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := g.Status().Audit
		if a == nil || a.Shipping == nil {
			t.Fatalf("audit status without its shipping: %+v", a)
		}
		s := a.Shipping
		if s.Target != "relp://"+collector || s.SpoolMax != 64<<20 || s.Connected || a.File != logPath {
			t.Fatalf("shipping status %+v of %+v", s, a)
		}
		if s.Reconnects > 0 && s.LastError != "" && s.AckedSeq < a.LastSeq && s.BacklogBytes > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a refused collector never showed: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, body := get(t, "http://"+g.metricsLn.Addr().String()+"/metrics")
	for _, want := range []string{"\ntimegate_audit_ship_connected 0\n", "\ntimegate_audit_write_failing 0\n", "\ntimegate_audit_segments 0\n",
		"\ntimegate_audit_ship_backlog_limit_bytes 6.7108864e+07\n", "\ntimegate_audit_last_seq "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q", strings.TrimSpace(want))
		}
	}
}

// TestAuditRotateReloads: a reload applies a changed auditrotate to the
// running writer, without a restart warning.
func TestAuditRotateReloads(t *testing.T) {
	dir := t.TempDir()
	text := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 5\nauditlog %s\nauditkey %s ed25519\n",
		freePort(t, "udp"), filepath.Join(dir, "audit.log"), filepath.Join(dir, "auditkey"))
	g, confPath := gatewayFromText(t, dir, text)
	defer g.audit.close(nil)
	want := iaudit.Rotation{Size: config.DefaultAuditRotateSize, Keep: config.DefaultAuditRotateKeep}
	if got := g.audit.w.Rotation(); got != want {
		t.Fatalf("at start: %+v, want %+v", got, want)
	}
	os.WriteFile(confPath, []byte(text+"auditrotate size 1048576 interval 86400 keep 90\n"), 0o600)
	warnings, err := g.reload()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		if strings.Contains(w, "audit") {
			t.Errorf("reload warned: %s", w)
		}
	}
	want = iaudit.Rotation{Size: 1 << 20, Every: 24 * time.Hour, Keep: 90}
	if got := g.audit.w.Rotation(); got != want {
		t.Fatalf("after the reload: %+v, want %+v", got, want)
	}
}
