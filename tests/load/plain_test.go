package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/internal/udpserve"
	"timegate/ntp"
)

// startServer runs timegate's UDP edge with a stratum-2 responder on a free
// loopback port.
func startServer(t *testing.T, gate ntp.Gate) (*net.UDPConn, *udpserve.Stats) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	st := &ntp.ServedState{Stratum: 2, RefID: 0x7f7f0101}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }, Gate: gate}
	stats := &udpserve.Stats{}
	srv := &udpserve.Server{Conns: []*net.UDPConn{conn}, Responder: func() *ntp.Responder { return resp }, Stats: stats, Log: zaptest.NewLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return conn, stats
}

func TestPlainRunGetsReplies(t *testing.T) {
	conn, stats := startServer(t, nil)
	var out, errb bytes.Buffer
	args := []string{"-mode", "plain", "-target", conn.LocalAddr().String(), "-rate", "2000",
		"-duration", "1s", "-conns", "2", "-every", "250ms", "-json"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	t.Logf("%+v", r)
	// Paced at 2000/s for 1 s: about 2000 requests, whatever the machine.
	if r.Sent < 1500 || r.Sent > 2100 {
		t.Errorf("sent %d requests in 1 s at 2000/s", r.Sent)
	}
	if r.Replies == 0 || r.Bad != 0 || r.Unmatched != 0 || r.KoD != 0 || r.SendErrors != 0 {
		t.Errorf("replies %d bad %d unmatched %d kod %d send errors %d", r.Replies, r.Bad, r.Unmatched, r.KoD, r.SendErrors)
	}
	// Every reply we counted was sent by the server; the server answered
	// everything it received (no gate), and we sent at least that.
	if snap := stats.Snapshot(); r.Replies > snap.Replied || snap.Received > r.Sent {
		t.Errorf("tool: sent %d replies %d; server: received %d replied %d", r.Sent, r.Replies, snap.Received, snap.Replied)
	}
	// At this gentle rate on loopback hardly anything is lost; a loaded CI
	// machine may lose some, not half.
	if r.AnsweredPct < 50 {
		t.Errorf("only %.1f %% answered", r.AnsweredPct)
	}
	if r.P50us <= 0 || r.P99us < r.P50us || r.MaxUs < r.P99us {
		t.Errorf("latencies p50 %v p99 %v max %v", r.P50us, r.P99us, r.MaxUs)
	}
	if len(r.Samples) < 3 || r.Samples[len(r.Samples)-1].Sent != r.Sent {
		t.Errorf("samples %+v", r.Samples)
	}
	if r.Samples[0].Memory != nil {
		t.Error("memory sampled without -pid")
	}
}

// TestPlainRunCountsOnlyMatchingReplies: a server that answers every
// request twice, once with a wrong origin, once correctly, and once more
// with a KoD echoing the right origin after the good reply. Only the good
// reply counts; the rest are unmatched.
func TestPlainRunCountsOnlyMatchingReplies(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer conn.Close()
	wg.Go(func() {
		buf := make([]byte, 512)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n < ntpLen {
				continue
			}
			reply := make([]byte, ntpLen)
			reply[0], reply[offStratum] = 4<<3|4, 2
			copy(reply[offOrigin:offOrigin+8], buf[offTransmit:offTransmit+8])
			wrong := bytes.Clone(reply)
			binary.BigEndian.PutUint64(wrong[offOrigin:], binary.BigEndian.Uint64(wrong[offOrigin:])^1<<33)
			kiss := bytes.Clone(reply)
			kiss[offStratum] = 0
			conn.WriteToUDPAddrPort(wrong, from)
			conn.WriteToUDPAddrPort(reply, from)
			conn.WriteToUDPAddrPort(kiss, from)
			conn.WriteToUDPAddrPort([]byte("junk"), from)
		}
	})
	var out, errb bytes.Buffer
	args := []string{"-target", conn.LocalAddr().String(), "-rate", "500", "-duration", "500ms", "-conns", "1", "-json", "-quiet"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if r.Replies == 0 || r.KoD != 0 || r.Replies > r.Sent {
		t.Fatalf("replies %d kod %d of %d sent", r.Replies, r.KoD, r.Sent)
	}
	if r.Unmatched < 2*r.Replies || r.Bad < r.Replies {
		t.Errorf("unmatched %d, bad %d for %d good replies; want >= 2x and >= 1x", r.Unmatched, r.Bad, r.Replies)
	}
}

// The grace period ends the run even when the server never answers.
func TestPlainRunSilentServer(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out, errb bytes.Buffer
	start := time.Now()
	args := []string{"-target", conn.LocalAddr().String(), "-rate", "100", "-duration", "300ms", "-grace", "100ms", "-json", "-quiet"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("run took %v", el)
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Sent == 0 || r.Replies != 0 || r.LossPct != 100 {
		t.Errorf("sent %d replies %d loss %v", r.Sent, r.Replies, r.LossPct)
	}
}
