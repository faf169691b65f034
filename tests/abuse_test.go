package tests

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/tests/harness"
)

// queryFrom sends one request from the local address src and reports
// whether a reply (of any kind) came back, and the reply's header.
func queryFrom(t *testing.T, src string, port int) (ntp.Header, bool) {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nonce := ntp.Time64(time.Now().UnixNano()) | 1
	c.Write(ntp.ClientRequest(nil, 4, 0, nonce))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 1024)
	n, err := c.Read(buf)
	if err != nil {
		return ntp.Header{}, false
	}
	h, _ := ntp.DecodeHeader(buf[:n])
	return h, h.Origin == nonce
}

// Issue 5: one flooding source is limited while a well-behaved chronyd
// client of the same gateway stays synchronised throughout.
func TestFloodingSourceLimitedChronyStaysSynced(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	// chrony polls every 1/16 s: interval -5 (32/s) gives it room.
	_, port := startLocalTimegate(t, 5, "ratelimit interval -5 burst 16 leak 2")
	c := harness.StartChrony(t, harness.ChronyOptions{Servers: []harness.ServerLine{{Port: port}}})
	c.WaitSelected(t, "127.0.0.1", 30*time.Second)

	// The flood comes from 127.0.0.2, a different source address.
	fc, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}, &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	var replies atomic.Int64
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := fc.Read(buf); err != nil {
				return
			}
			replies.Add(1)
		}
	}()
	req := ntp.ClientRequest(nil, 4, 0, 0x1234)
	const floodFor = 3 * time.Second
	sent := 0
	start := time.Now()
	checks := 0
	for time.Since(start) < floodFor {
		for range 200 {
			fc.Write(req)
			sent++
		}
		time.Sleep(2 * time.Millisecond)
		if sent%4000 == 0 {
			checks++
			src, ok := harness.FindSource(c.Sources(t), "127.0.0.1")
			if !ok || !src.Selected() {
				t.Fatalf("chrony lost timegate during the flood: %+v", src)
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	got := replies.Load()
	elapsed := time.Since(start).Seconds()
	// Allowed: the burst, 32 replies/s for the rate, and 1 in 4 of the rest
	// leaked. Anything near the sent count means the limiter did nothing.
	maxExpected := int64(16 + 32*elapsed + float64(sent)/4*1.2)
	t.Logf("flood: sent %d, answered %d (%.1f%%), %d sync checks", sent, got, 100*float64(got)/float64(sent), checks)
	if sent < 10000 {
		t.Fatalf("flood too small to mean anything: %d", sent)
	}
	if got > maxExpected {
		t.Errorf("flooder got %d replies, more than the limit allows (%d)", got, maxExpected)
	}
	if got == 0 {
		t.Errorf("flooder got no reply at all: the leak must still answer about 1 in 4")
	}
	src, ok := harness.FindSource(c.Sources(t), "127.0.0.1")
	if !ok || !src.Selected() || src.Reach != 0xff {
		t.Errorf("after the flood chrony shows %+v, want selected with reach 377", src)
	}
}

// Issue 5: a reload with a broken file keeps the old policy; a good file
// replaces it.
func TestReloadBrokenConfigKeepsPolicy(t *testing.T) {
	bins := build.Binaries(t)
	port := harness.FreeUDPPort(t)
	base := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 6\nratelimit off\n", port)
	p := harness.StartTimegateWith(t, bins.Timegate, base+"restrict 127.0.0.2 ignore\n", harness.TimegateOptions{Args: []string{"-state", t.TempDir()}})
	if _, ok := queryFrom(t, "127.0.0.2", port); ok {
		t.Fatal("ignored source got an answer")
	}
	if _, ok := queryFrom(t, "127.0.0.1", port); !ok {
		t.Fatal("allowed source got no answer")
	}
	from := p.LogSize()
	p.WriteConfig(t, base+"restrict 127.0.0.2 ignore\nrestrict 127.0.0.3 bogusflag\nclientloglimit 5\n")
	p.Signal(syscall.SIGHUP)
	p.WaitLog(t, from, `reload rejected`, 5*time.Second)
	log := p.Log()[from:]
	for _, want := range []string{":7: restrict", "bogusflag", ":8: clientloglimit"} {
		if !strings.Contains(log, want) {
			t.Errorf("reload error does not mention %q:\n%s", want, log)
		}
	}
	if _, ok := queryFrom(t, "127.0.0.2", port); ok {
		t.Fatal("after a rejected reload the ignored source got an answer")
	}
	if _, ok := queryFrom(t, "127.0.0.1", port); !ok {
		t.Fatal("after a rejected reload the allowed source got no answer")
	}
	from = p.LogSize()
	p.WriteConfig(t, base+"restrict 127.0.0.2 noserve kod\n")
	p.Signal(syscall.SIGHUP)
	p.WaitLog(t, from, `configuration reloaded`, 5*time.Second)
	h, ok := queryFrom(t, "127.0.0.2", port)
	if !ok || h.Stratum != 0 || ntp.KissCode(h.RefID) != ntp.KissDENY {
		t.Fatalf("after reload with noserve kod: got %v %+v, want a DENY kiss", ok, h)
	}
}
