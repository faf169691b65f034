package nts

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

// keFuzzTimeout bounds one fuzzed session: an in-memory pipe answers at
// once, so only a server waiting for more input runs into it.
const keFuzzTimeout = 200 * time.Millisecond

// FuzzServeConn runs the NTS-KE server connection, ServeConn, on whatever
// a client sends after a real TLS 1.3 handshake over an in-memory pipe.
// Properties: ServeConn returns (no panic, no hang past its deadline); what
// it sends is at most one well-formed message within MaxResponseSize; an
// Error record comes alone with End of Message; a response with cookies
// has exactly one Next Protocol and one AEAD record, at most MaxCookies
// cookies, and every cookie opens with the server's ring to the keys this
// TLS session exports for the AEAD chosen, which the client offered.
func FuzzServeConn(f *testing.F) {
	good := mustMessage(f, goodRequest()...)
	f.Add(good)
	f.Add(mustMessage(f, NextProtocolRecord(ProtocolNTPv4), AEADRecord(15, 30, 999), PortRecord(123), ServerRecord("ntp.example"), EndOfMessage()))
	f.Add(mustMessage(f, NextProtocolRecord(ProtocolNTPv4), AEADRecord(999), EndOfMessage()))
	f.Add(mustMessage(f, NextProtocolRecord(7), AEADRecord(15), EndOfMessage()))
	f.Add(mustMessage(f, NextProtocolRecord(ProtocolNTPv4), AEADRecord(15), Record{Type: 0x1234, Critical: true}, EndOfMessage()))
	f.Add(append(good, good...))
	f.Add(good[:len(good)-2])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0x40, 0, 0, 0}, 300))
	srv, cli, cfg, ring := fuzzKESetup(f)
	f.Fuzz(func(t *testing.T, req []byte) {
		resp, cs, serveErr := fuzzSession(t, srv, cli, cfg, req)
		checkKEResponse(t, req, resp, cs, ring, serveErr)
	})
}

// fuzzSession runs one session: handshake, req, then everything the server
// sends until it closes.
func fuzzSession(t *testing.T, srv, cli *tls.Config, cfg *ServerConfig, req []byte) ([]byte, tls.ConnectionState, error) {
	sc, cc := net.Pipe()
	defer cc.Close()
	served := make(chan error, 1)
	go func() { served <- ServeConn(tls.Server(sc, srv), cfg) }()
	c := tls.Client(cc, cli)
	c.SetDeadline(time.Now().Add(10 * keFuzzTimeout))
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	go func() { // the server may stop reading early
		c.Write(req)
		// Then end our side, so that a request cut short is answered at
		// once instead of at the deadline: more runs per second.
		c.CloseWrite()
	}()
	resp, _ := io.ReadAll(io.LimitReader(c, MaxResponseSize+1))
	select {
	case err := <-served:
		return resp, c.ConnectionState(), err
	case <-time.After(10 * keFuzzTimeout):
		t.Fatal("ServeConn did not return by its deadline")
	}
	return nil, tls.ConnectionState{}, nil
}

func checkKEResponse(t *testing.T, req, resp []byte, cs tls.ConnectionState, ring *KeyRing, serveErr error) {
	if len(resp) == 0 {
		if serveErr == nil {
			t.Fatal("no response, yet ServeConn reports keys issued")
		}
		return // a read error or timeout before a whole request: nothing sent
	}
	if len(resp) > MaxResponseSize {
		t.Fatalf("response of %d octets", len(resp))
	}
	recs, err := ParseResponse(resp)
	if err != nil {
		t.Fatalf("response does not parse: %v (%x)", err, resp)
	}
	if recs[0].Type == RecError {
		if len(recs) != 2 || len(recs[0].Body) != 2 || !recs[0].Critical {
			t.Fatalf("Error record not alone: %+v", recs)
		}
		if serveErr == nil {
			t.Fatal("Error record sent, yet ServeConn reports keys issued")
		}
		return
	}
	count := map[RecordType]int{}
	for _, r := range recs {
		count[r.Type]++
	}
	if count[RecNextProtocol] != 1 || count[RecAEAD] > 1 || count[RecNewCookie] > MaxCookies {
		t.Fatalf("response records %v", count)
	}
	if count[RecNewCookie] == 0 {
		return // a refusal: nothing in common
	}
	checkCookies(t, req, recs, cs, ring)
	if serveErr != nil {
		t.Fatalf("cookies issued, yet ServeConn failed: %v", serveErr)
	}
}

// checkCookies: every cookie opens to the keys the client would export.
func checkCookies(t *testing.T, req []byte, recs []Record, cs tls.ConnectionState, ring *KeyRing) {
	var aead uint16
	for _, r := range recs {
		if r.Type == RecAEAD && len(r.Body) == 2 {
			aead = uint16(r.Body[0])<<8 | uint16(r.Body[1])
		}
	}
	if !bytes.Contains(req, []byte{byte(aead >> 8), byte(aead)}) {
		t.Fatalf("server chose AEAD %d, which the request does not even mention", aead)
	}
	for _, r := range recs {
		if r.Type != RecNewCookie {
			continue
		}
		c, err := ring.OpenCookie(r.Body)
		if err != nil {
			t.Fatalf("issued cookie does not open: %v", err)
		}
		ctx := exporterContext(ProtocolNTPv4, aead, 0)
		c2s, err := cs.ExportKeyingMaterial(ExporterLabel, ctx[:], aeadKeyLen(aead))
		if err != nil || c.AEAD != aead || !bytes.Equal(c.C2S[:len(c2s)], c2s) {
			t.Fatalf("cookie holds AEAD %d and other keys than the session exports (%v)", c.AEAD, err)
		}
	}
}

// A crasher becomes a named test: none so far. This checks the harness
// itself on the one request that must get keys.
func TestServeConnFuzzHarness(t *testing.T) {
	srv, cli, cfg, ring := fuzzKESetup(t)
	req := mustMessage(t, goodRequest()...)
	resp, cs, err := fuzzSession(t, srv, cli, cfg, req)
	if err != nil || countCookies(mustParse(t, resp)) != MaxCookies {
		t.Fatalf("good request: err %v, response %x", err, resp)
	}
	checkKEResponse(t, req, resp, cs, ring, err)
	// Half a record header, then the client's end: a bad request.
	if resp, _, err := fuzzSession(t, srv, cli, cfg, req[:3]); !errors.Is(err, ErrMalformed) || len(resp) == 0 {
		t.Fatalf("truncated request: err %v, response %x", err, resp)
	}
}

// fuzzKESetup makes the server and client TLS configurations of the KE
// fuzz target: an Ed25519 certificate and X25519 alone, the cheapest
// handshake there is, since every run does one (the default hybrid ML-KEM
// key exchange is far slower under the fuzzer's instrumentation).
func fuzzKESetup(t testing.TB) (srv, cli *tls.Config, cfg *ServerConfig, ring *KeyRing) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), DNSNames: []string{"ke.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}
	ring = testRing(t, 1)
	srv = ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil })
	srv.CurvePreferences = []tls.CurveID{tls.X25519}
	cli = &tls.Config{RootCAs: pool, ServerName: "ke.test", NextProtos: []string{ALPN}, CurvePreferences: []tls.CurveID{tls.X25519}}
	return srv, cli, &ServerConfig{Ring: func() *KeyRing { return ring }, Timeout: keFuzzTimeout}, ring
}

func mustParse(t *testing.T, resp []byte) []Record {
	recs, err := ParseResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
