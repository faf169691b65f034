package tests

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"timegate/nts"
	"timegate/tests/harness"
)

// Issue 13 item 6: AEAD 30 (AES-128-GCM-SIV) between two timegates, the Go
// client being timegate's own upstream engine (chrony 4.3 has no AEAD 30):
// the client offers 30 and 15, the server prefers 30, and the client
// synchronises over NTS with it. With `ntsaeads 15` on the server the same
// client gets AEAD 15: the preference is the server's.
func TestTimegateNTSAEAD30(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server []string
		aead   int
	}{
		{"default prefers 30", nil, 30},
		{"ntsaeads 15", []string{"ntsaeads 15"}, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ntpPort, kePort, cert := ntsTimegate(t, 5, tc.server...)
			line := fmt.Sprintf("server 127.0.0.1 port %d nts ntsport %d iburst minpoll -4 maxpoll -4", ntpPort, kePort)
			tg, port := upstreamTimegate(t, "ntstrustedcerts "+cert, "minsources 1", line)
			tg.WaitLog(t, 0, fmt.Sprintf(`NTS-KE done.*"aead": %d,`, tc.aead), 20*time.Second)
			checkHonest(t, waitServing(t, tg, port, 6))
		})
	}
}

// Issue 13 item 2: maxntsconnections caps concurrent NTS-KE sessions: with
// 2 held open (no TLS yet), a third connection is reset at once, and a
// full NTS-KE succeeds again when one is released.
func TestMaxNTSConnections(t *testing.T) {
	_, _, kePort, cert := ntsTimegate(t, 5, "maxntsconnections 2", "ntsratelimit off")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(kePort))
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(200 * time.Millisecond) // let the listener admit both
	// The reset may come before connect returns, or on the first read.
	if third, err := net.Dial("tcp", addr); err == nil {
		defer third.Close()
		third.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := third.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("third connection not refused: %v", err)
		}
	}
	held[0].Close()
	time.Sleep(200 * time.Millisecond)
	conf := &tls.Config{RootCAs: harness.CertPool(t, cert), ServerName: "localhost"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := nts.Exchange(ctx, nil, addr, conf, nil); err != nil {
		t.Fatalf("NTS-KE after a slot freed: %v", err)
	}
}
