//go:build linux && (amd64 || arm64)

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"
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
