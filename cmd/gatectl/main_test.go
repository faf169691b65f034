package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/internal/udpserve"
	"timegate/ntp"
)

// startServer serves st on a loopback port with the real edge and responder.
func startServer(t *testing.T, st *ntp.ServedState) int {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	srv := &udpserve.Server{Conns: []*net.UDPConn{conn}, Responder: func() *ntp.Responder { return resp }, Stats: &udpserve.Stats{}, Log: zaptest.NewLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return conn.LocalAddr().(*net.UDPAddr).Port
}

func TestQueryJSON(t *testing.T) {
	port := startServer(t, &ntp.ServedState{Stratum: 2, RefID: 0xc0000201, RootDelay: 4 * time.Millisecond, RootDispersion: 2 * time.Millisecond, Offset: 50 * time.Millisecond})
	var out, errb bytes.Buffer
	code := run([]string{"query", "-json", "-port", strconv.Itoa(port), "127.0.0.1"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var r map[string]any
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"offset_s", "delay_s", "stratum", "refid", "leap", "root_distance_s"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, out.String())
		}
	}
	// The served clock is 50 ms ahead; an exchange's offset is within half
	// its delay of that (and of the learned transmit lead, at most
	// microseconds), however long a loaded machine made the delay.
	if off, dl := r["offset_s"].(float64), r["delay_s"].(float64); math.Abs(off-0.050) > dl/2+1e-4 {
		t.Errorf("offset %v with delay %v, want 0.050 ± delay/2 (served offset)", off, dl)
	}
	if r["stratum"].(float64) != 2 || r["refid"] != "192.0.2.1" || r["leap"].(float64) != 0 {
		t.Errorf("fields: %s", out.String())
	}
	// Root delay/2 + root dispersion (4 ms) plus half this exchange's own
	// delay, which a loaded machine can stretch to milliseconds; the two
	// header fields travel in the 2^-16 s short format.
	if d, dl := r["root_distance_s"].(float64), r["delay_s"].(float64); math.Abs(d-dl/2-0.004) > 1e-4 {
		t.Errorf("root distance %v with delay %v, want 0.004 + delay/2", d, dl)
	}
}

func TestQueryUnsynchronisedAndKiss(t *testing.T) {
	port := startServer(t, ntp.Unsynchronised(-20))
	var out, errb bytes.Buffer
	if code := run([]string{"query", "-port", strconv.Itoa(port), "127.0.0.1"}, &out, &errb); code != exitUnsound {
		t.Fatalf("exit %d, want %d: %s%s", code, exitUnsound, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "unsynchronised") || !strings.Contains(out.String(), "INIT") ||
		!strings.Contains(out.String(), "timegate says: not yet synchronised") {
		t.Errorf("output does not say unsynchronised: %s", out.String())
	}
}

func TestQueryTimeout(t *testing.T) {
	// A bound UDP socket that never answers.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out, errb bytes.Buffer
	port := strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
	if code := run([]string{"query", "-timeout", "200ms", "-port", port, "127.0.0.1"}, &out, &errb); code != exitFail {
		t.Fatalf("exit %d, want failure", code)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(good, []byte("port 1123\nlocal stratum 5\n"), 0o644)
	os.WriteFile(bad, []byte("port 1123\nbogus 1\n"), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"config", "check", good}, &out, &errb); code != exitOK {
		t.Errorf("good config: exit %d %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"config", "check", bad}, &out, &errb); code != exitFail || !strings.Contains(errb.String(), "bad.conf:2: bogus: unknown directive") {
		t.Errorf("bad config: exit %d %q", code, errb.String())
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != exitUsage {
		t.Errorf("no args: exit %d", code)
	}
	if code := run([]string{"help"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "query") {
		t.Errorf("help: exit %d %q", code, out.String())
	}
}
