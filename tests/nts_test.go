package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"timegate/nts"
	"timegate/tests/harness"
)

// ntsTimegate runs timegate as an NTS server (local stratum) with a test
// certificate; it returns the process, the NTP and NTS-KE ports and the
// certificate path for clients to trust.
func ntsTimegate(t *testing.T, stratum int, extra ...string) (*harness.Process, int, int, string) {
	t.Helper()
	bins := build.Binaries(t)
	dir := t.TempDir()
	cert, key := harness.WriteCert(t, dir)
	ntpPort := harness.FreeUDPPort(t)
	kePort := harness.FreeTCPPort(t)
	conf := fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nlocal stratum %d\n"+
		"ratelimit interval -6 burst 32 leak 2\nntsservercert %s\nntsserverkey %s\nntsdumpdir %s\n%s\n",
		ntpPort, kePort, stratum, cert, key, dir, strings.Join(extra, "\n"))
	p := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", dir}})
	return p, ntpPort, kePort, cert
}

// waitAuthenticated waits until chrony has selected timegate over NTS and
// returns its authdata row.
func waitAuthenticated(t *testing.T, c *harness.Chrony) harness.AuthData {
	t.Helper()
	c.WaitSelected(t, "127.0.0.1", 30*time.Second)
	var ad harness.AuthData
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		a, ok := harness.FindAuthData(c.AuthData(t), "127.0.0.1")
		ad = a
		return ok && a.Mode == "NTS" && a.Cookies == 8, fmt.Sprintf("%+v", a)
	})
	return ad
}

// Issue 3: the real chronyd 4.3 as NTS client of timegate: AEAD 15, 8
// cookies, authenticated and selected. Issue 8: a restart, three
// `gatectl keys nts rotate` and a SIGUSR1 rotation keep its old cookies
// valid, so chrony runs no new NTS-KE and gets no NAK (authdata).
func TestChronyNTSClient(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	p, ntpPort, kePort, cert := ntsTimegate(t, 4)
	// 1 s polls: at 1/16 s chrony would spend all 8 cookies during the
	// restart's downtime and redo NTS-KE whatever the server does.
	c := harness.StartChrony(t, harness.ChronyOptions{
		Servers:     []harness.ServerLine{{Port: ntpPort, NTS: true, NTSPort: kePort, Poll: &harness.PollRange{Min: 0, Max: 0}}},
		TrustedCert: cert,
	})
	ad := waitAuthenticated(t, c)
	if ad.Type != 15 || ad.KeyLen != 256 || ad.CookieLen != 104 || ad.KeyID != 1 || ad.NAK {
		t.Fatalf("authdata %+v: want AEAD 15, 256-bit keys, 8 cookies of 104 bytes, one KE, no NAK", ad)
	}
	nd := c.NTPData(t, "127.0.0.1")
	if nd["Authenticated"] != "Yes" || nd["Stratum"] != "4" {
		t.Fatalf("ntpdata: %v", nd)
	}

	checkNoNewKE := func(phase string) {
		t.Helper()
		rx := ntpRx(t, c)
		// Several 1 s polls must be answered and authenticated with the old cookies.
		harness.WaitFor(t, 15*time.Second, func() (bool, string) {
			return ntpRx(t, c) >= rx+3, fmt.Sprintf("valid rx %d, was %d", ntpRx(t, c), rx)
		})
		a, _ := harness.FindAuthData(c.AuthData(t), "127.0.0.1")
		if a.KeyID != 1 || a.NAK || a.Mode != "NTS" {
			t.Fatalf("%s: chrony ran a new NTS-KE or got NAKs: %+v", phase, a)
		}
		if nd := c.NTPData(t, "127.0.0.1"); nd["Authenticated"] != "Yes" {
			t.Fatalf("%s: not authenticated: %v", phase, nd)
		}
		src, _ := harness.FindSource(c.Sources(t), "127.0.0.1")
		if !src.Selected() {
			t.Fatalf("%s: source not selected: %+v", phase, src)
		}
	}

	p.Restart(t)
	checkNoNewKE("after restart")
	bins := build.Binaries(t)
	sealing := func() string {
		out, _, err := p.Gatectl(t, bins.Gatectl, "keys", "nts", "list", "-json")
		if err != nil {
			t.Fatalf("keys nts list: %v", err)
		}
		var kr struct{ Keys []struct{ ID, Role string } }
		if err := json.Unmarshal([]byte(out), &kr); err != nil || len(kr.Keys) < 2 || kr.Keys[1].Role != "sealing" {
			t.Fatalf("keys nts list: %v %s", err, out)
		}
		return kr.Keys[1].ID
	}
	for i := range 3 {
		before := sealing()
		if _, _, err := p.Gatectl(t, bins.Gatectl, "keys", "nts", "rotate"); err != nil {
			t.Fatalf("gatectl keys nts rotate: %v", err)
		}
		if after := sealing(); after == before {
			t.Fatalf("rotation %d: the sealing key is still %s", i+1, after)
		}
		checkNoNewKE(fmt.Sprintf("after gatectl rotation %d", i+1))
	}
	from := p.LogSize()
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	p.WaitLog(t, from, "NTS key ring rotated", 5*time.Second)
	checkNoNewKE("after SIGUSR1 rotation")
}

// ntpRx is chrony's count of valid packets received from timegate.
func ntpRx(t *testing.T, c *harness.Chrony) int {
	t.Helper()
	nd := c.NTPData(t, "127.0.0.1")
	var n int
	fmt.Sscan(nd["Total valid RX"], &n)
	return n
}

// Issue 3 negatives against the daemon: TLS 1.2, no ALPN and a wrong ALPN
// get no NTS-KE answer.
func TestNTSKERefusesBadTLS(t *testing.T) {
	_, _, kePort, cert := ntsTimegate(t, 4)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(kePort))
	pool := harness.CertPool(t, cert)
	cases := []struct {
		name string
		conf *tls.Config
	}{
		{"TLS 1.2", &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12, NextProtos: []string{"ntske/1"}}},
		{"no ALPN", &tls.Config{RootCAs: pool, ServerName: "localhost"}},
		{"wrong ALPN", &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}}},
	}
	req := []byte{0x80, 1, 0, 2, 0, 0, 0x80, 4, 0, 2, 0, 15, 0x80, 0, 0, 0} // NextProtocol NTPv4, AEAD 15, EOM
	for _, c := range cases {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, c.conf)
		if err != nil {
			continue // refused in the handshake: what we want
		}
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		conn.Write(req)
		n, err := conn.Read(make([]byte, 1024))
		conn.Close()
		if err == nil && n > 0 {
			t.Errorf("%s: server answered %d bytes of NTS-KE", c.name, n)
		}
	}
	// The same request with proper TLS 1.3 and ALPN is answered.
	res, err := nts.Exchange(context.Background(), nil, addr, &tls.Config{RootCAs: pool, ServerName: "localhost"}, []uint16{15})
	if err != nil || len(res.Cookies) != 8 {
		t.Fatalf("good KE: %v", err)
	}
}

// Issue 3: replacing the certificate (files rewritten, then SIGHUP) under a
// loop of NTS-KE handshakes loses none of them.
func TestCertificateReloadUnderKELoop(t *testing.T) {
	// Handshakes back to back from one address: the per-source KE limit
	// would otherwise (rightly) refuse most of them.
	p, _, kePort, cert := ntsTimegate(t, 4, "ntsratelimit off")
	dir := filepath.Dir(cert)
	key := filepath.Join(dir, "cert-key.pem")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(kePort))
	// Every pair is made before the loop and the client trusts all of them
	// from the start: a client must never fail because the test had not yet
	// told it about the certificate the server swapped in (the server may
	// pick new files up from its file watch before the SIGHUP, too).
	spare := t.TempDir()
	pool := x509.NewCertPool()
	type pair struct{ cert, key []byte }
	var pairs []pair
	for i := range 5 {
		c, k := cert, key
		if i > 0 {
			c, k = harness.WriteCertWith(t, spare, harness.CertOptions{Name: fmt.Sprintf("gen%d", i)})
		}
		cb, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(cb)
		pairs = append(pairs, pair{cb, kb})
	}
	install := func(p pair) {
		// Key first, then certificate, each replaced atomically: for a
		// moment the old certificate sits beside the new key, which the
		// server must refuse to swap in rather than fail a handshake.
		for _, f := range []struct {
			path string
			data []byte
			perm os.FileMode
		}{{key, p.key, 0o600}, {cert, p.cert, 0o644}} {
			tmp := f.path + ".tmp"
			if err := os.WriteFile(tmp, f.data, f.perm); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, f.path); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			conf := &tls.Config{RootCAs: pool, ServerName: "localhost"}
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err := nts.Exchange(ctx, nil, addr, conf, []uint16{15})
				cancel()
				if err != nil {
					failed.Add(1)
					t.Logf("KE failed: %v", err)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	for _, pr := range pairs[1:] {
		install(pr)
		from := p.LogSize()
		p.Signal(syscall.SIGHUP)
		p.WaitLog(t, from, "configuration reloaded", 5*time.Second)
		time.Sleep(300 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d handshakes during 4 certificate swaps, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() < 20 {
		t.Fatalf("%d failed, %d succeeded", failed.Load(), ok.Load())
	}
}

// Issue 3: gatectl query -nts is a full NTS client of the daemon.
func TestGatectlQueryNTS(t *testing.T) {
	bins := build.Binaries(t)
	_, ntpPort, kePort, cert := ntsTimegate(t, 3)
	out, stderr, err := harness.RunGatectl(t, bins.Gatectl, "query", "-nts", "-json", "-ca", cert,
		net.JoinHostPort("localhost", strconv.Itoa(kePort)))
	if err != nil {
		t.Fatalf("gatectl query -nts: %v\n%s", err, stderr)
	}
	var r struct {
		NTS        bool    `json:"nts"`
		AEAD       int     `json:"aead"`
		KECookies  int     `json:"ke_cookies"`
		CookieLen  int     `json:"cookie_len"`
		NewCookies int     `json:"new_cookies"`
		NTPServer  string  `json:"ntp_server"`
		Stratum    int     `json:"stratum"`
		Offset     float64 `json:"offset_s"`
		Delay      float64 `json:"delay_s"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// gatectl offers AEAD 30 first and timegate (ntsaeads 30 15) takes it:
	// 72-octet cookies.
	if !r.NTS || r.AEAD != 30 || r.KECookies != 8 || r.CookieLen != 72 || r.NewCookies != 1 || r.Stratum != 3 {
		t.Errorf("gatectl -nts result: %+v", r)
	}
	if !strings.HasSuffix(r.NTPServer, ":"+strconv.Itoa(ntpPort)) {
		t.Errorf("NTP server %q, want the negotiated port %d", r.NTPServer, ntpPort)
	}
	// Same clock on both ends: the offset lies within half the round trip.
	if math.Abs(r.Offset) > r.Delay/2+1e-6 {
		t.Errorf("offset %v outside ± delay/2 (delay %v)", r.Offset, r.Delay)
	}
	// Without trusting the certificate the query must fail, never fall back.
	if _, _, err := harness.RunGatectl(t, bins.Gatectl, "query", "-nts", "-timeout", "2s",
		net.JoinHostPort("localhost", strconv.Itoa(kePort))); err == nil {
		t.Error("query -nts succeeded without trusting the self-signed certificate")
	}
}
