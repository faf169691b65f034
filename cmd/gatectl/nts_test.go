package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/internal/udpserve"
	"timegate/ntp"
	"timegate/nts"
)

// ntsServer is an in-process NTS service on loopback: a KE listener and an
// NTP socket whose responder authenticates with nts.Server.
type ntsServer struct {
	kePort  int
	ntpPort int
	caFile  string
}

type ntsServerOpts struct {
	// ntpRing, when set, is the ring the NTP side opens cookies with,
	// instead of the KE side's: a ring that lost the key makes NAKs.
	ntpRing *nts.KeyRing
	// advertisedPort, when set, is the NTP port the KE negotiates instead
	// of the real one.
	advertisedPort uint16
}

func startNTSServer(t *testing.T, st *ntp.ServedState, o ntsServerOpts) *ntsServer {
	t.Helper()
	ring, err := nts.NewKeyRing(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ntpRing := ring
	if o.ntpRing != nil {
		ntpRing = o.ntpRing
	}
	s := &ntsServer{}
	s.ntpPort = startNTPWithNTS(t, st, ntpRing)
	cert, caFile := loopbackCert(t)
	s.caFile = caFile
	ln, err := tls.Listen("tcp", "127.0.0.1:0", nts.ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }))
	if err != nil {
		t.Fatal(err)
	}
	s.kePort = ln.Addr().(*net.TCPAddr).Port
	port := uint16(s.ntpPort)
	if o.advertisedPort != 0 {
		port = o.advertisedPort
	}
	cfg := &nts.ServerConfig{
		Ring:    func() *nts.KeyRing { return ring },
		Options: nts.NegotiateOptions{NTPServer: "127.0.0.1", NTPPort: port},
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { nts.ServeConn(c.(*tls.Conn), cfg) })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

// startNTPWithNTS is startServer with NTS enabled.
func startNTPWithNTS(t *testing.T, st *ntp.ServedState, ring *nts.KeyRing) int {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	resp := &ntp.Responder{
		State: func() *ntp.ServedState { return st },
		NTS:   &nts.Server{Ring: func() *nts.KeyRing { return ring }},
	}
	srv := &udpserve.Server{Conns: []*net.UDPConn{conn}, Responder: func() *ntp.Responder { return resp }, Stats: &udpserve.Stats{}, Log: zaptest.NewLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// loopbackCert makes a self-signed certificate for 127.0.0.1 and writes it
// as a PEM file for -ca.
func loopbackCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "timegate test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

func syncedState() *ntp.ServedState {
	return &ntp.ServedState{Stratum: 2, RefID: 0xc0000201, RootDelay: 4 * time.Millisecond, RootDispersion: 2 * time.Millisecond, Offset: 50 * time.Millisecond}
}

func TestQueryNTSJSON(t *testing.T) {
	s := startNTSServer(t, syncedState(), ntsServerOpts{})
	var out, errb bytes.Buffer
	ke := "127.0.0.1:" + strconv.Itoa(s.kePort)
	if code := run([]string{"query", "-nts", "-aead", "15", "-json", "-ca", s.caFile, ke}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var r map[string]any
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"nts": true, "aead": 15.0, "ke_cookies": 8.0, "cookie_len": float64(nts.CookieSize),
		"new_cookies": 1.0, "ntp_server": "127.0.0.1:" + strconv.Itoa(s.ntpPort), "ke_server": ke,
		"stratum": 2.0, "refid": "192.0.2.1", "synchronised": true,
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %v, want %v", k, r[k], v)
		}
	}
	// As in TestQueryJSON: within half the exchange's delay of the served
	// 50 ms, whatever the machine's load made of the delay.
	if off, dl := r["offset_s"].(float64), r["delay_s"].(float64); math.Abs(off-0.050) > dl/2+1e-4 {
		t.Errorf("offset %v with delay %v, want 0.050 ± delay/2 (served offset)", off, dl)
	}
	if kt := r["ke_time_s"].(float64); kt <= 0 || kt > 3 {
		t.Errorf("ke_time_s %v", kt)
	}
}

func TestQueryNTSText(t *testing.T) {
	s := startNTSServer(t, syncedState(), ntsServerOpts{})
	var out, errb bytes.Buffer
	if code := run([]string{"query", "-nts", "-aead", "15", "-ca", s.caFile, "127.0.0.1:" + strconv.Itoa(s.kePort)}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"offset:", "stratum:         2", "authenticated:   yes (NTS)", "aead:            15 (AEAD_AES_SIV_CMAC_256)", "ke cookies:      8 of 104 octets", "new cookies:     1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestQueryNTSUnsynchronised(t *testing.T) {
	s := startNTSServer(t, ntp.Unsynchronised(-20), ntsServerOpts{})
	var out, errb bytes.Buffer
	if code := run([]string{"query", "-nts", "-ca", s.caFile, "127.0.0.1:" + strconv.Itoa(s.kePort)}, &out, &errb); code != exitUnsound {
		t.Fatalf("exit %d, want %d: %s%s", code, exitUnsound, out.String(), errb.String())
	}
}

// TestQueryNTSUntrusted: without -ca the test certificate is not trusted,
// and nothing is sent over NTP.
func TestQueryNTSUntrusted(t *testing.T) {
	s := startNTSServer(t, syncedState(), ntsServerOpts{})
	var out, errb bytes.Buffer
	if code := run([]string{"query", "-nts", "127.0.0.1:" + strconv.Itoa(s.kePort)}, &out, &errb); code != exitFail {
		t.Fatalf("exit %d, want failure", code)
	}
	if !strings.Contains(errb.String(), "certificate") || out.Len() != 0 {
		t.Errorf("stderr %q, stdout %q", errb.String(), out.String())
	}
}

// TestQueryNTSNAK: an NTP server whose ring cannot open the KE's cookies
// answers with an NTS NAK, which the query reports as such.
func TestQueryNTSNAK(t *testing.T) {
	other, err := nts.NewKeyRing(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := startNTSServer(t, syncedState(), ntsServerOpts{ntpRing: other})
	var out, errb bytes.Buffer
	if code := run([]string{"query", "-nts", "-timeout", "2s", "-ca", s.caFile, "127.0.0.1:" + strconv.Itoa(s.kePort)}, &out, &errb); code != exitFail {
		t.Fatalf("exit %d, want failure", code)
	}
	if !strings.Contains(errb.String(), "NTS NAK") {
		t.Errorf("stderr %q", errb.String())
	}
}

// TestQueryNTSPortOverride: the negotiated port is used unless -port is
// given explicitly, which then wins.
func TestQueryNTSPortOverride(t *testing.T) {
	dead, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	s := startNTSServer(t, syncedState(), ntsServerOpts{advertisedPort: uint16(dead.LocalAddr().(*net.UDPAddr).Port)})
	ke := "127.0.0.1:" + strconv.Itoa(s.kePort)
	var out, errb bytes.Buffer
	if code := run([]string{"query", "-nts", "-timeout", "300ms", "-ca", s.caFile, ke}, &out, &errb); code != exitFail {
		t.Fatalf("negotiated dead port: exit %d", code)
	}
	errb.Reset()
	if code := run([]string{"query", "-nts", "-port", strconv.Itoa(s.ntpPort), "-ca", s.caFile, ke}, &out, &errb); code != exitOK {
		t.Fatalf("-port override: exit %d: %s", code, errb.String())
	}
}

func TestQueryNTSUsage(t *testing.T) {
	for _, args := range [][]string{
		{"query", "-nts"},
		{"query", "-nts", "-version", "3", "127.0.0.1"},
		{"query", "-ca", "x.pem", "127.0.0.1"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("%q: exit %d", args, code)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"query", "-nts", "-ca", filepath.Join(t.TempDir(), "missing.pem"), "127.0.0.1"}, &out, &errb); code != exitFail {
		t.Errorf("missing CA file: exit %d", code)
	}
}

func TestKEHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"ntp.example":      "ntp.example:4460",
		"ntp.example:1234": "ntp.example:1234",
		"::1":              "[::1]:4460",
		"[::1]":            "[::1]:4460",
		"[::1]:99":         "[::1]:99",
	} {
		if got := keHostPort(in); got != want {
			t.Errorf("keHostPort(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestQueryNTSOffersAEAD30: by default gatectl offers AES-128-GCM-SIV first, and a
// server that has it (timegate) negotiates it, with its shorter cookies; -aead
// refuses what the client cannot do.
func TestQueryNTSOffersAEAD30(t *testing.T) {
	s := startNTSServer(t, syncedState(), ntsServerOpts{})
	var out, errb bytes.Buffer
	ke := "127.0.0.1:" + strconv.Itoa(s.kePort)
	if code := run([]string{"query", "-nts", "-json", "-ca", s.caFile, ke}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var r map[string]any
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r["aead"] != 30.0 || r["cookie_len"] != float64(nts.CookieSizeGCMSIV) || r["synchronised"] != true {
		t.Fatalf("default offer: %s", out.String())
	}
	for _, bad := range []string{"16", "15,15", "x", ""} {
		if code := run([]string{"query", "-nts", "-aead", bad, ke}, &out, &errb); code != exitUsage {
			t.Errorf("-aead %q: exit %d", bad, code)
		}
	}
}
