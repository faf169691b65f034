package nts

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// keServer serves NTS-KE on a loopback listener, one ServeConn per accepted
// connection, and reports each session's result.
type keServer struct {
	addr    string
	ring    *KeyRing
	pool    *x509.CertPool
	results chan error
}

func startKEServer(t testing.TB, cfg ServerConfig) *keServer {
	t.Helper()
	cert, pool := testCert(t, "ke.test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &keServer{addr: ln.Addr().String(), ring: testRing(t, 1), pool: pool, results: make(chan error, 16)}
	if cfg.Ring == nil {
		cfg.Ring = func() *KeyRing { return s.ring }
	}
	tlsConf := ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { s.results <- ServeConn(tls.Server(c, tlsConf), &cfg) }()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *keServer) result(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.results:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("server session did not end")
		return nil
	}
}

func (s *keServer) clientConf() *tls.Config {
	return &tls.Config{RootCAs: s.pool, ServerName: "ke.test"}
}

func TestKEOverTLS(t *testing.T) {
	s := startKEServer(t, ServerConfig{Options: NegotiateOptions{NTPServer: "ntp.ke.test", NTPPort: 1123}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := Exchange(ctx, nil, s.addr, s.clientConf(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.result(t); err != nil {
		t.Fatalf("server: %v", err)
	}
	if res.AEAD != 15 || len(res.C2S) != 32 || len(res.S2C) != 32 || bytes.Equal(res.C2S, res.S2C) {
		t.Fatalf("AEAD %d, C2S %x, S2C %x", res.AEAD, res.C2S, res.S2C)
	}
	if res.NTPServer != "ntp.ke.test" || res.NTPPort != 1123 {
		t.Errorf("NTP service %s port %d", res.NTPServer, res.NTPPort)
	}
	if len(res.Cookies) != MaxCookies {
		t.Fatalf("%d cookies", len(res.Cookies))
	}
	for i, ck := range res.Cookies {
		c, err := s.ring.OpenCookie(ck)
		if err != nil {
			t.Fatalf("cookie %d: %v", i, err)
		}
		// The server sealed what it exported; the client exported the same.
		if !bytes.Equal(c.C2S[:], res.C2S) || !bytes.Equal(c.S2C[:], res.S2C) || c.AEAD != 15 {
			t.Fatalf("cookie %d holds other keys than the client exported", i)
		}
	}
}

func TestKEDefaultsToKEAddress(t *testing.T) {
	s := startKEServer(t, ServerConfig{})
	res, err := Exchange(context.Background(), nil, s.addr, s.clientConf(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.NTPServer != "127.0.0.1" || res.NTPPort != 123 {
		t.Errorf("NTP service %s port %d, want 127.0.0.1 port 123", res.NTPServer, res.NTPPort)
	}
	s.result(t)
}

func TestKERefusesTLS12(t *testing.T) {
	s := startKEServer(t, ServerConfig{})
	conf := s.clientConf()
	conf.MaxVersion = tls.VersionTLS12
	conf.NextProtos = []string{ALPN}
	c, err := tls.Dial("tcp", s.addr, conf)
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.2 handshake succeeded")
	}
	if err := s.result(t); !errors.Is(err, ErrHandshake) {
		t.Fatalf("server: %v", err)
	}
}

// rawKE runs a TLS client with conf, sends msg, and returns what it reads.
func rawKE(t *testing.T, s *keServer, conf *tls.Config, msg []byte) ([]byte, error) {
	t.Helper()
	c, err := tls.Dial("tcp", s.addr, conf)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

func TestKERefusesMissingOrWrongALPN(t *testing.T) {
	s := startKEServer(t, ServerConfig{})
	req := mustMessage(t, goodRequest()...)
	for _, protos := range [][]string{nil, {"h2"}, {"ntske/2"}} {
		conf := s.clientConf()
		conf.NextProtos = protos
		out, _ := rawKE(t, s, conf, req)
		if len(out) != 0 {
			t.Errorf("ALPN %q: server sent %d bytes", protos, len(out))
		}
		err := s.result(t)
		// No ALPN: Go completes the handshake and ServeConn must refuse.
		// Another ALPN: Go's server aborts with no_application_protocol.
		if protos == nil && !errors.Is(err, ErrALPN) || protos != nil && !errors.Is(err, ErrHandshake) {
			t.Errorf("ALPN %q: server: %v", protos, err)
		}
	}
}

func TestKERefusesOversizedRequest(t *testing.T) {
	s := startKEServer(t, ServerConfig{})
	conf := s.clientConf()
	conf.NextProtos = []string{ALPN}
	big := append(mustMessage(t, NextProtocolRecord(0), AEADRecord(15), Record{Type: 0x4000, Body: make([]byte, MaxRequestSize)}), 0x80, 0, 0, 0)
	out, _ := rawKE(t, s, conf, big)
	if err := s.result(t); !errors.Is(err, &ProtocolError{Code: CodeBadRequest}) || !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("server: %v", err)
	}
	// The Error record may be lost to a reset (unread request bytes), but
	// if anything arrived it must be Bad Request and nothing else.
	if len(out) > 0 && !bytes.Equal(out, mustMessage(t, ErrorResponse(CodeBadRequest)...)) {
		t.Fatalf("response % x", out)
	}
}

func TestKEBadRequestGetsErrorRecord(t *testing.T) {
	s := startKEServer(t, ServerConfig{})
	conf := s.clientConf()
	conf.NextProtos = []string{ALPN}
	out, err := rawKE(t, s, conf, mustMessage(t, NextProtocolRecord(0), Record{Type: 0x1234, Critical: true}, AEADRecord(15), EndOfMessage()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, mustMessage(t, ErrorResponse(CodeUnrecognizedCritical)...)) {
		t.Fatalf("response % x", out)
	}
	if err := s.result(t); !errors.Is(err, &ProtocolError{Code: CodeUnrecognizedCritical}) {
		t.Fatalf("server: %v", err)
	}
}

func TestKESlowClientCutAtDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := startKEServer(t, ServerConfig{Timeout: timeout})
	for _, handshake := range []bool{false, true} {
		start := time.Now()
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		if handshake { // finish TLS, then send nothing
			conf := s.clientConf()
			conf.NextProtos = []string{ALPN}
			tc := tls.Client(c, conf)
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
		}
		err = s.result(t)
		c.Close()
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("handshake=%v: server: %v, want a timeout", handshake, err)
		}
		if d := time.Since(start); d < timeout || d > timeout+2*time.Second {
			t.Errorf("handshake=%v: session lasted %v, deadline %v", handshake, d, timeout)
		}
	}
}

func TestExchangeHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Exchange(ctx, nil, ln.Addr().String(), &tls.Config{}, nil); err == nil {
		t.Fatal("exchange with a silent server succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Exchange took %v despite a 200ms context", d)
	}
}

func TestExchangeRejectsUnknownAEAD(t *testing.T) {
	if _, err := Exchange(context.Background(), nil, "127.0.0.1:1", nil, []uint16{99}); !errors.Is(err, ErrUnsupportedAEAD) {
		t.Fatalf("err = %v", err)
	}
}

func TestSplitKEAddr(t *testing.T) {
	for in, want := range map[string][2]string{
		"ke.example":       {"ke.example", "ke.example:4460"},
		"ke.example:123":   {"ke.example", "ke.example:123"},
		"[2001:db8::1]":    {"2001:db8::1", "[2001:db8::1]:4460"},
		"[2001:db8::1]:99": {"2001:db8::1", "[2001:db8::1]:99"},
		"192.0.2.1":        {"192.0.2.1", "192.0.2.1:4460"},
	} {
		h, hp := splitKEAddr(in)
		if h != want[0] || hp != want[1] {
			t.Errorf("%s: %s %s", in, h, hp)
		}
	}
}

// BenchmarkKEExchange is one full NTS-KE over loopback TLS 1.3 (ECDSA P-256):
// handshake, request, 8 cookies, both sides' allocations together.
func BenchmarkKEExchange(b *testing.B) {
	s := startKEServer(b, ServerConfig{})
	conf := s.clientConf()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Exchange(context.Background(), nil, s.addr, conf, nil); err != nil {
			b.Fatal(err)
		}
		if err := s.result(b); err != nil {
			b.Fatal(err)
		}
	}
}
