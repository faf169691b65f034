//go:build linux && (amd64 || arm64)

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"timegate/nts"
)

// The echo server answers a plain run: every reply matches its request.
func TestEchoAnswersPlainRun(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runEcho(ctx, Config{Target: addr, Duration: 30 * time.Second}, &bytes.Buffer{}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(50 * time.Millisecond) // the echo socket is bound
	var out, errb bytes.Buffer
	if code := run([]string{"-target", addr, "-rate", "1000", "-duration", "300ms", "-conns", "2", "-json", "-quiet"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Replies == 0 || r.Replies > r.Sent || r.Bad != 0 || r.Unmatched != 0 {
		t.Errorf("%+v", r)
	}
}

// The NTS pre-flight refuses a server whose reply does not authenticate:
// the echo server sends the request back as a reply, with the client's own
// Authenticator, which S2C does not open.
func TestNTSPreflightRefusesUnauthenticated(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runEcho(ctx, Config{Target: addr, Duration: 30 * time.Second}, &bytes.Buffer{}) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond)
	ke := &nts.KEResult{AEAD: nts.AEADAESSIVCMAC256, C2S: bytes.Repeat([]byte{1}, 32), S2C: bytes.Repeat([]byte{2}, 32)}
	for range nts.MaxCookies {
		ke.Cookies = append(ke.Cookies, bytes.Repeat([]byte{3}, nts.CookieSize))
	}
	r, err := buildNTSRequests(ke, 2)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := r.preflight(c.(*net.UDPConn)); err == nil || !strings.Contains(err.Error(), "does not authenticate") {
		t.Fatalf("pre-flight against an echo: %v", err)
	}
}
