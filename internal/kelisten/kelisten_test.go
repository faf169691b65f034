package kelisten

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/nts"
)

type fixture struct {
	l    *Listener
	addr string
	ring *nts.KeyRing
	pool *x509.CertPool
}

func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ke.test"},
		DNSNames: []string{"ke.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// start runs a Listener on a loopback port; edit may change its Config.
func start(t *testing.T, network string, edit func(*Config)) *fixture {
	t.Helper()
	cert, pool := testCert(t)
	ring, err := nts.NewKeyRing(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		TLS:    nts.ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }),
		Server: &nts.ServerConfig{Ring: func() *nts.KeyRing { return ring }, Timeout: 500 * time.Millisecond},
		Log:    zaptest.NewLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(t.Context(), network)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &fixture{l: l, addr: ln.Addr().String(), ring: ring, pool: pool}
}

// exchange runs a full NTS-KE from local address src.
func (f *fixture) exchange(t *testing.T, src string, timeout time.Duration) (*nts.KEResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return nts.Exchange(ctx, d, f.addr, &tls.Config{RootCAs: f.pool, ServerName: "ke.test"}, nil)
}

func TestServeFullKE(t *testing.T) {
	f := start(t, "127.0.0.1:0", nil)
	res, err := f.exchange(t, "127.0.0.1", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cookies) != nts.MaxCookies {
		t.Fatalf("%d cookies", len(res.Cookies))
	}
	for _, ck := range res.Cookies {
		c, err := f.ring.OpenCookie(ck)
		if err != nil || string(c.C2S[:]) != string(res.C2S) {
			t.Fatalf("cookie does not open to the client's keys: %v", err)
		}
	}
	waitFor(t, func() bool { return f.l.Stats().Served == 1 && f.l.Stats().Active == 0 })
	if h := f.l.Stats().Latency; h.Count != 1 || h.Sum <= 0 || h.Cumulative[numBuckets-1] != 1 {
		t.Fatalf("latency of the one session: %+v", h)
	}
}

func TestDualStack(t *testing.T) {
	if _, err := os.Stat("/proc/net/if_inet6"); err != nil {
		t.Skip("no IPv6")
	}
	f := start(t, ":0", nil)
	_, port, _ := net.SplitHostPort(f.addr)
	for _, host := range []string{"127.0.0.1", "::1"} {
		f.addr = net.JoinHostPort(host, port)
		if _, err := f.exchange(t, host, 5*time.Second); err != nil {
			t.Fatalf("over %s: %v", host, err)
		}
	}
}

// A flood of idle connections from one source takes at most its share of
// slots; a client from another address completes NTS-KE in time.
func TestIdleFloodDoesNotStarveOthers(t *testing.T) {
	f := start(t, "127.0.0.1:0", func(c *Config) { c.Server.Timeout = 2 * time.Second })
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 300 {
		// A refused connection may already be reset when Dial returns.
		if c, err := net.Dial("tcp", f.addr); err == nil {
			conns = append(conns, c)
		}
	}
	waitFor(t, func() bool { return f.l.Stats().Accepted == 300 })
	s := f.l.Stats()
	if s.Active != DefaultMaxConnsPerSource || s.RefusedSourceCap != 300-DefaultMaxConnsPerSource {
		t.Fatalf("active %d, refused by source cap %d", s.Active, s.RefusedSourceCap)
	}
	start := time.Now()
	if _, err := f.exchange(t, "127.0.0.2", 2*time.Second); err != nil {
		t.Fatalf("good client: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("good client took %v", d)
	}
}

// dialIdle opens a TCP connection from src that never says anything.
func dialIdle(t *testing.T, addr string, src netip.Addr) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Campaign finding (slowloris from many sources): idle connections from
// distinct addresses filled every slot. A full listener evicts the oldest
// connection that has not finished its handshake, and only when a newcomer
// waits: one eviction for one good client.
func TestFullCapEvictsIdlePreHandshake(t *testing.T) {
	f := start(t, "127.0.0.1:0", func(c *Config) { c.MaxConns = 4; c.Server.Timeout = 10 * time.Second })
	for i := range 4 {
		dialIdle(t, f.addr, netip.AddrFrom4([4]byte{127, 0, byte(i + 1), 1}))
	}
	waitFor(t, func() bool { return f.l.Stats().Active == 4 })
	time.Sleep(2 * evictMinAge)
	if s := f.l.Stats(); s.RefusedTotalCap != 0 || s.Active != 4 {
		t.Fatalf("evicted %d with nobody waiting (active %d)", s.RefusedTotalCap, s.Active)
	}
	if _, err := f.exchange(t, "127.0.0.2", 5*time.Second); err != nil {
		t.Fatalf("good client at a full listener: %v", err)
	}
	waitFor(t, func() bool { return f.l.Stats().Served == 1 && f.l.Stats().Active == 3 })
	if s := f.l.Stats(); s.RefusedTotalCap != 1 {
		t.Fatalf("evicted %d, want 1", s.RefusedTotalCap)
	}
}

// When every slot holds a session past its handshake, nothing is evicted
// and nothing reset: the newcomer waits in the kernel's accept queue and is
// served when a slot frees.
func TestFullCapQueuesInsteadOfReset(t *testing.T) {
	f := start(t, "127.0.0.1:0", func(c *Config) { c.MaxConns = 2; c.Server.Timeout = time.Second })
	cfg := &tls.Config{RootCAs: f.pool, ServerName: "ke.test", NextProtos: []string{nts.ALPN}}
	for i := range 2 { // handshake done, then silence until the deadline
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(i+1), 9)}}
		c, err := tls.DialWithDialer(d, "tcp", f.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitFor(t, func() bool { return f.l.Stats().Active == 2 })
	if _, err := f.exchange(t, "127.0.0.2", 8*time.Second); err != nil {
		t.Fatalf("queued client: %v", err)
	}
	waitFor(t, func() bool { s := f.l.Stats(); return s.Timeouts == 2 && s.Served == 1 })
	if s := f.l.Stats(); s.RefusedTotalCap != 0 || s.RefusedSourceCap != 0 {
		t.Fatalf("evicted %d, refused %d; want none", s.RefusedTotalCap, s.RefusedSourceCap)
	}
}

// Many addresses of one IPv4 /24 share one block cap.
func TestBlockCap(t *testing.T) {
	f := start(t, "127.0.0.1:0", func(c *Config) { c.MaxConnsPerBlock = 4; c.Server.Timeout = 5 * time.Second })
	for i := range 6 {
		if c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 5, byte(i+1))}}).Dial("tcp", f.addr); err == nil {
			defer c.Close()
		}
	}
	waitFor(t, func() bool { return f.l.Stats().Accepted == 6 })
	if s := f.l.Stats(); s.Active != 4 || s.RefusedSourceCap != 2 {
		t.Fatalf("active %d, refused %d; want 4, 2", s.Active, s.RefusedSourceCap)
	}
	if _, err := f.exchange(t, "127.0.6.1", 5*time.Second); err != nil {
		t.Fatalf("client of another /24: %v", err)
	}
}

// Under pressure a client that finished its handshake gets
// pressureRequestTimeout to send its request: a slowloris that pays for
// handshakes from many addresses holds its slot half a second, not 2 s.
func TestPressureShortensRequestWait(t *testing.T) {
	f := start(t, "127.0.0.1:0", func(c *Config) { c.MaxConns = 4; c.Server.Timeout = 20 * time.Second })
	cfg := &tls.Config{RootCAs: f.pool, ServerName: "ke.test", NextProtos: []string{nts.ALPN}}
	for i := range 4 {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(i+1), 3)}}
		c, err := tls.DialWithDialer(d, "tcp", f.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waitFor(t, func() bool { return f.l.Stats().Active == uint64(i+1) })
		// The server finishes its handshake a moment after the client:
		// let it, so that the next connection does not count yet.
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, func() bool { return f.l.Stats().Timeouts == 2 })
	if s := f.l.Stats(); s.Active != 2 {
		t.Fatalf("active %d after the two late sessions timed out, want 2", s.Active)
	}
}

// A client sharing its /24 with idle connections that hold the block's
// share displaces the oldest of them instead of being refused (the lead's
// KE flood test: attackers on 127.0.0.2-5, the client on 127.0.0.1).
func TestBlockCapEvictsIdleOfSameBlock(t *testing.T) {
	f := start(t, "127.0.0.1:0", func(c *Config) { c.MaxConnsPerBlock = 4; c.Server.Timeout = 10 * time.Second })
	for i := range 4 {
		dialIdle(t, f.addr, netip.AddrFrom4([4]byte{127, 0, 5, byte(i + 1)}))
	}
	waitFor(t, func() bool { return f.l.Stats().Active == 4 })
	time.Sleep(2 * evictMinAge)
	if _, err := f.exchange(t, "127.0.5.9", 5*time.Second); err != nil {
		t.Fatalf("client of the same /24: %v", err)
	}
	waitFor(t, func() bool { s := f.l.Stats(); return s.Served == 1 && s.Active == 3 })
	if s := f.l.Stats(); s.RefusedSourceCap != 1 {
		t.Fatalf("source-cap evictions %d, want 1", s.RefusedSourceCap)
	}
}

// A connection a cap refuses must not spend the source's rate budget, or a
// flood would lock the source's legitimate clients out for longer.
func TestCapRefusalSpendsNoToken(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	f := start(t, "127.0.0.1:0", func(c *Config) {
		c.Server.Timeout = 5 * time.Second
		c.Allow = func(netip.Addr, time.Time) bool {
			mu.Lock()
			defer mu.Unlock()
			calls++
			return true
		}
	})
	for range 40 {
		if c, err := net.Dial("tcp", f.addr); err == nil {
			defer c.Close()
		}
	}
	waitFor(t, func() bool { return f.l.Stats().Accepted == 40 })
	mu.Lock()
	defer mu.Unlock()
	if calls != DefaultMaxConnsPerSource {
		t.Fatalf("Allow called %d times for %d admitted connections", calls, DefaultMaxConnsPerSource)
	}
}

// Under pressure (three quarters of the slots taken) a new connection gets
// pressureHandshakeTimeout for its handshake instead of the session timeout.
func TestPressureShortensHandshake(t *testing.T) {
	f := start(t, "127.0.0.1:0", func(c *Config) { c.MaxConns = 4; c.Server.Timeout = 20 * time.Second })
	for i := range 4 {
		dialIdle(t, f.addr, netip.AddrFrom4([4]byte{127, 0, byte(i + 1), 2}))
		waitFor(t, func() bool { return f.l.Stats().Active == uint64(i+1) })
		// The server finishes its handshake a moment after the client:
		// let it, so that the next connection does not count yet.
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, func() bool { return f.l.Stats().Timeouts == 2 })
	if s := f.l.Stats(); s.Active != 2 {
		t.Fatalf("active %d after the two late connections timed out, want 2", s.Active)
	}
}

func TestAllowHook(t *testing.T) {
	var mu sync.Mutex
	var seen []netip.Addr
	f := start(t, "127.0.0.1:0", func(c *Config) {
		c.Allow = func(a netip.Addr, _ time.Time) bool {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, a)
			return a != netip.MustParseAddr("127.0.0.3")
		}
	})
	if _, err := f.exchange(t, "127.0.0.3", 2*time.Second); err == nil {
		t.Fatal("rate-limited client served")
	}
	if _, err := f.exchange(t, "127.0.0.4", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	s := f.l.Stats()
	if s.RefusedRate != 1 || len(seen) != 2 || seen[0] != netip.MustParseAddr("127.0.0.3") {
		t.Fatalf("refused by rate %d, Allow saw %v", s.RefusedRate, seen)
	}
}

func TestCountsFailures(t *testing.T) {
	var mu sync.Mutex
	reasons := map[string]int{}
	f := start(t, "127.0.0.1:0", func(c *Config) {
		c.Server.Timeout = 5 * time.Second
		c.OnFailure = func(a netip.Addr, why uint8) {
			mu.Lock()
			defer mu.Unlock()
			if a == netip.MustParseAddr("127.0.0.1") {
				reasons[FailureName(why)]++
			}
		}
	})
	base := &tls.Config{RootCAs: f.pool, ServerName: "ke.test"}
	noALPN := base.Clone()
	if c, err := tls.Dial("tcp", f.addr, noALPN); err == nil {
		c.Read(make([]byte, 1)) // returns when the server closes
		c.Close()
	}
	old := base.Clone()
	old.MaxVersion, old.NextProtos = tls.VersionTLS12, []string{nts.ALPN}
	if c, err := tls.Dial("tcp", f.addr, old); err == nil {
		c.Close()
		t.Error("TLS 1.2 accepted")
	}
	good := base.Clone()
	good.NextProtos = []string{nts.ALPN}
	if c, err := tls.Dial("tcp", f.addr, good); err == nil {
		c.Write([]byte{0x80, 1, 0, 2, 0, 0, 0xc0, 0x01, 0, 0, 0x80, 4, 0, 2, 0, 15, 0x80, 0, 0, 0})
		c.Read(make([]byte, 64))
		c.Close()
	}
	waitFor(t, func() bool {
		s := f.l.Stats()
		return s.BadALPN == 1 && s.Handshake == 1 && s.Errors[nts.CodeUnrecognizedCritical] == 1
	})
	s := f.l.Stats()
	byName := s.FailedByReason()
	if len(byName) != 9 || byName[FailedALPN] != 1 || byName[FailedHandshake] != 1 || byName[FailedUnrecognized] != 1 {
		t.Errorf("failures by name: %v", byName)
	}
	if s.Latency.Count != 0 {
		t.Errorf("failed sessions entered the latency histogram: %+v", s.Latency)
	}
	// The audit hook heard each failure, by reason, for its source.
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reasons["alpn"] == 1 && reasons["handshake"] == 1 && reasons["error-record"] == 1 && len(reasons) == 3
	})
}

func TestAcceptErrorsBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := &flakyListener{fails: 6, closed: make(chan struct{})}
		cert, _ := testCert(t)
		l, err := New(Config{
			TLS:    nts.ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }),
			Server: &nts.ServerConfig{Ring: func() *nts.KeyRing { return nil }},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- l.Serve(ctx, ln) }()
		time.Sleep(time.Second)
		synctest.Wait()
		if s := l.Stats(); s.AcceptErrors != 6 {
			t.Errorf("accept errors %d", s.AcceptErrors)
		}
		// Exponential back-off between failed accepts, from 5 ms.
		want := []time.Duration{5, 10, 20, 40, 80, 160}
		for i := 1; i < len(ln.calls); i++ {
			if got := ln.calls[i].Sub(ln.calls[i-1]); got != want[i-1]*time.Millisecond {
				t.Errorf("accept %d came %v after the previous, want %vms", i, got, want[i-1])
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Serve after shutdown: %v", err)
		}
	})
}

// flakyListener fails Accept with EMFILE a few times, then blocks until Close.
type flakyListener struct {
	calls  []time.Time
	fails  int
	closed chan struct{}
	once   sync.Once
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.calls = append(f.calls, time.Now())
	if f.fails > 0 {
		f.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	<-f.closed
	return nil, net.ErrClosed
}

func (f *flakyListener) Close() error   { f.once.Do(func() { close(f.closed) }); return nil }
func (f *flakyListener) Addr() net.Addr { return &net.TCPAddr{} }

func TestBlockKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.0",
		"::ffff:192.0.2.7":     "192.0.2.0",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1::",
		"2001:db8:1:ffff::1":   "2001:db8:1::",
	} {
		if got := blockKey(netip.MustParseAddr(in)); got != netip.MustParseAddr(want) {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::",
		"2001:db8:1:2::ffff":   "2001:db8:1:2::",
	} {
		if got := sourceKey(netip.MustParseAddr(in)); got != netip.MustParseAddr(want) {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ring := func() *nts.KeyRing { return nil }
	weak := &tls.Config{MinVersion: tls.VersionTLS12}
	for name, cfg := range map[string]Config{
		"no TLS":       {Server: &nts.ServerConfig{Ring: ring}},
		"no server":    {TLS: nts.ServerTLSConfig(nil)},
		"no ring":      {TLS: nts.ServerTLSConfig(nil), Server: &nts.ServerConfig{}},
		"TLS 1.2":      {TLS: weak, Server: &nts.ServerConfig{Ring: ring}},
		"bad server":   {TLS: nts.ServerTLSConfig(nil), Server: &nts.ServerConfig{Ring: ring, Options: nts.NegotiateOptions{NTPServer: "a b"}}},
		"negative cap": {TLS: nts.ServerTLSConfig(nil), Server: &nts.ServerConfig{Ring: ring}, MaxConns: -1},
		"nice 20":      {TLS: nts.ServerTLSConfig(nil), Server: &nts.ServerConfig{Ring: ring}, Nice: 20},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{TLS: nts.ServerTLSConfig(nil), Server: &nts.ServerConfig{Ring: ring}}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
