package tests

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timegate/nts"
	"timegate/tests/harness"
)

// Issue 5: a flood of NTS-KE connections — idle ones that never send a byte,
// and ones that start TLS and stall — does not stop a well-behaved NTS client
// from completing NTS-KE, and NTP answers keep flowing.
func TestKEFloodDoesNotStarveGoodClients(t *testing.T) {
	bins := build.Binaries(t)
	dir := t.TempDir()
	cert, key := harness.WriteCert(t, dir)
	ntpPort := harness.FreeUDPPort(t)
	kePort := harness.FreeTCPPort(t)
	conf := fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nlocal stratum 5\nratelimit off\n"+
		"ntsservercert %s\nntsserverkey %s\nntsdumpdir %s\n", ntpPort, kePort, cert, key, dir)
	harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", dir}})
	keAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(kePort))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var flood sync.WaitGroup
	var opened atomic.Int64
	// Attackers on 127.0.0.2..127.0.0.5: idle sockets, re-opened as the
	// server cuts them, for the whole test.
	for a := 2; a <= 5; a++ {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(a))}
		for range 60 {
			flood.Go(func() {
				d := net.Dialer{LocalAddr: src, Timeout: time.Second}
				for ctx.Err() == nil {
					c, err := d.DialContext(ctx, "tcp", keAddr)
					if err != nil {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					opened.Add(1)
					if a%2 == 0 {
						// Start a TLS handshake and never finish it: send
						// half a ClientHello.
						c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc})
					}
					buf := make([]byte, 1)
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					c.Read(buf) // until the server cuts us
					c.Close()
					// Reconnect at once, but yield a moment: a pure CPU
					// spin would test the machine's scheduler, not the caps.
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
	}
	time.Sleep(500 * time.Millisecond) // let the flood build up

	tlsConf := &tls.Config{RootCAs: harness.CertPool(t, cert), ServerName: "localhost"}
	for i := range 5 {
		start := time.Now()
		// One retry, as any NTS client (chrony included) retries KE: under
		// -race on two loaded cores a TLS handshake alone can take seconds.
		var res *nts.KEResult
		var err error
		for attempt := range 2 {
			kctx, kcancel := context.WithTimeout(ctx, 5*time.Second)
			res, err = nts.Exchange(kctx, nil, keAddr, tlsConf, []uint16{15})
			kcancel()
			if err == nil {
				break
			}
			t.Logf("good client KE %d attempt %d: %v", i, attempt+1, err)
		}
		if err != nil {
			t.Fatalf("good client KE %d failed under flood after %v: %v", i, time.Since(start), err)
		}
		if len(res.Cookies) != 8 || res.AEAD != 15 || int(res.NTPPort) != ntpPort {
			t.Fatalf("KE result: %d cookies, AEAD %d, NTP port %d", len(res.Cookies), res.AEAD, res.NTPPort)
		}
		t.Logf("good KE %d completed in %v with %d flood connections opened so far", i, time.Since(start).Round(time.Millisecond), opened.Load())
		if _, ok := queryFrom(t, "127.0.0.1", ntpPort); !ok {
			t.Fatalf("no NTP answer during the KE flood")
		}
		time.Sleep(300 * time.Millisecond)
	}
	cancel()
	flood.Wait()
	if opened.Load() < 240 {
		t.Errorf("flood opened only %d connections; the test did not flood", opened.Load())
	}
}
