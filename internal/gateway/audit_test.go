package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/audit"
	"timegate/internal/config"
)

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
	confPath := filepath.Join(dir, "t.conf")
	os.WriteFile(confPath, []byte(text), 0o600)
	cfg, err := config.Load(confPath)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{ConfigPath: confPath, StateDir: filepath.Join(dir, "state"), Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
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
	if st := g.AuditStatus(); !st.Enabled || st.File != logPath || st.Shipping != nil {
		t.Fatalf("%+v", st)
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
