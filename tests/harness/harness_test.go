package harness_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"timegate/tests/harness"
)

// fakeDaemonEnv switches the test binary into a stand-in timegate (see
// fakeTimegate in timegate_test.go).
const fakeDaemonEnv = "HARNESS_FAKE_TIMEGATE=1"

func TestMain(m *testing.M) {
	if os.Getenv("HARNESS_FAKE_TIMEGATE") == "1" {
		os.Exit(fakeTimegate(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// recordTB records what a helper does with its testing.TB instead of failing or
// skipping the real test; Fatal and Skip end the helper's goroutine as they
// would a test's.
type recordTB struct {
	testing.TB
	mu          sync.Mutex
	fatal, skip string
}

func (r *recordTB) Helper() {}

func (r *recordTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recordTB) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skip = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func record(t *testing.T, fn func(tb testing.TB)) *recordTB {
	r := &recordTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

func TestRequireBinary(t *testing.T) {
	if p := harness.RequireBinary(t, "sh"); !filepath.IsAbs(p) {
		t.Errorf("RequireBinary(sh) = %q, want an absolute path", p)
	}
	const absent = "no-such-peer-binary-4711"
	t.Setenv("CI", "true")
	r := record(t, func(tb testing.TB) { harness.RequireBinary(tb, absent) })
	if !strings.Contains(r.fatal, absent) || r.skip != "" {
		t.Errorf("CI=true, missing binary: fatal=%q skip=%q; want a failure naming it", r.fatal, r.skip)
	}
	t.Setenv("CI", "")
	r = record(t, func(tb testing.TB) { harness.RequireBinary(tb, absent) })
	if !strings.Contains(r.skip, absent) || r.fatal != "" {
		t.Errorf("CI unset, missing binary: fatal=%q skip=%q; want a skip naming it", r.fatal, r.skip)
	}
	t.Setenv("CI", "true")
	r = record(t, func(tb testing.TB) { harness.RequireBinary(tb, "chronyd") })
	if r.fatal != "" && !strings.Contains(r.fatal, "apt-get install -y chrony") {
		t.Errorf("missing chronyd message %q does not name the chrony package", r.fatal)
	}
}

func TestFreePorts(t *testing.T) {
	u := harness.FreeUDPPort(t)
	for _, host := range []string{"127.0.0.1", "::1"} {
		c, err := net.ListenPacket("udp", net.JoinHostPort(host, fmt.Sprint(u)))
		if err != nil {
			if host == "::1" && !strings.Contains(err.Error(), "address already in use") {
				continue // no IPv6 loopback here
			}
			t.Fatalf("FreeUDPPort gave %d, not bindable on %s: %v", u, host, err)
		}
		c.Close()
	}
	p := harness.FreeTCPPort(t)
	for _, host := range []string{"127.0.0.1", "::1"} {
		l, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(p)))
		if err != nil {
			if host == "::1" && !strings.Contains(err.Error(), "address already in use") {
				continue
			}
			t.Fatalf("FreeTCPPort gave %d, not listenable on %s: %v", p, host, err)
		}
		l.Close()
	}
}

// An etcd cluster needs six ports at once; asked one at a time the kernel
// may offer a released port again, which once made two members collide.
func TestFreeTCPPortsDistinct(t *testing.T) {
	for range 20 {
		seen := map[int]bool{}
		for _, p := range harness.FreeTCPPorts(t, 8) {
			if seen[p] {
				t.Fatalf("FreeTCPPorts gave port %d twice", p)
			}
			seen[p] = true
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(p)))
			if err != nil {
				t.Fatalf("FreeTCPPorts gave %d, not listenable: %v", p, err)
			}
			l.Close()
		}
	}
}

func TestWriteCert(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := harness.WriteCert(t, dir)
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatalf("certificate and key do not pair: %v", err)
	}
	b, _ := os.ReadFile(certPath)
	block, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", cert.PublicKey)
	}
	pool := harness.CertPool(t, certPath)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool}); err == nil {
		t.Error("certificate verifies for example.com")
	}
	if len(pair.Certificate) != 1 {
		t.Errorf("chain length %d, want 1", len(pair.Certificate))
	}

	// Expired certificate on request, written beside the first without touching it.
	old := time.Now().Add(-48 * time.Hour)
	c2, _ := harness.WriteCertWith(t, dir, harness.CertOptions{Name: "expired", NotBefore: old, NotAfter: old.Add(time.Hour)})
	b2, _ := os.ReadFile(c2)
	block2, _ := pem.Decode(b2)
	expired, _ := x509.ParseCertificate(block2.Bytes)
	if _, err := expired.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: harness.CertPool(t, c2)}); err == nil {
		t.Error("expired certificate verifies")
	}
}

func TestWriteKeys(t *testing.T) {
	dir := t.TempDir()
	k1 := harness.Key{ID: 1, Type: "AES128", Secret: []byte{0x00, 0x01, 0xab, 0xff}}
	k2 := harness.NewKey(t, 7, "AES256")
	k3 := harness.NewKey(t, 9, "SHA1")
	if len(k2.Secret) != 32 || len(k3.Secret) != 20 {
		t.Errorf("NewKey lengths: AES256 %d, SHA1 %d; want 32, 20", len(k2.Secret), len(k3.Secret))
	}
	path := harness.WriteKeys(t, dir, k1, k2, k3)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("keys file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || lines[1] != "1 AES128 HEX:0001ABFF" ||
		!strings.HasPrefix(lines[2], "7 AES256 HEX:") || len(lines[2]) != len("7 AES256 HEX:")+64 ||
		!strings.HasPrefix(lines[3], "9 SHA1 HEX:") {
		t.Errorf("keys file:\n%s", b)
	}
}

func TestServerLine(t *testing.T) {
	for _, tc := range []struct {
		s    harness.ServerLine
		want string
	}{
		{harness.ServerLine{Port: 11123},
			"server 127.0.0.1 port 11123 iburst minpoll -6 maxpoll -4"},
		{harness.ServerLine{Host: "::1", Port: 1, NTS: true, NTSPort: 2, Key: 0},
			"server ::1 port 1 iburst minpoll -6 maxpoll -4 nts ntsport 2"},
		{harness.ServerLine{Host: "localhost", Port: 1, Key: 3, Poll: &harness.PollRange{0, 0}, Options: []string{"prefer"}},
			"server localhost port 1 iburst minpoll 0 maxpoll 0 key 3 prefer"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

func TestConfigPorts(t *testing.T) {
	udp, tcp := harness.ConfigPorts("# comment\nport 1123 # NTP\nntsport 4460\nport 0\nserver x port 9\nbindaddress 127.0.0.1\n")
	if fmt.Sprint(udp) != "[1123]" || fmt.Sprint(tcp) != "[4460]" {
		t.Errorf("ConfigPorts = %v %v, want [1123] [4460]", udp, tcp)
	}
}

func netListenUDP(port int) (net.PacketConn, error) {
	return net.ListenPacket("udp", fmt.Sprintf("0.0.0.0:%d", port))
}
