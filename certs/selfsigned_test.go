package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestGenerateSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "tls")
	now := time.Now()
	certPath, keyPath, err := GenerateSelfSigned(dir, nil, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, certPath: 0o644, keyPath: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	c, err := LoadFiles(certPath, keyPath, now)
	if err != nil {
		t.Fatalf("generated pair does not load: %v", err)
	}
	leaf := c.Leaf
	if leaf.IsCA || !leaf.BasicConstraintsValid || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("not a server end-entity certificate: CA %v, EKU %v", leaf.IsCA, leaf.ExtKeyUsage)
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != SelfSignedValidity+SelfSignedBackdate {
		t.Errorf("validity %v", got)
	}
	if !slices.Equal(leaf.DNSNames, []string{"localhost"}) || len(leaf.IPAddresses) != 2 ||
		!leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("SANs %v %v, want the defaults", leaf.DNSNames, leaf.IPAddresses)
	}

	// A client that trusts just this file completes a TLS 1.3 handshake.
	s, err := NewStore(certPath, keyPath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	if _, err := handshake(serveTLS(t, s), roots); err != nil {
		t.Fatalf("handshake trusting the self-signed certificate: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "ntp.example.com", CurrentTime: now}); err == nil {
		t.Error("certificate verified for a name it does not carry")
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: ip, CurrentTime: now}); err != nil {
			t.Errorf("verify for %s: %v", ip, err)
		}
	}
}

func TestGenerateSelfSignedHosts(t *testing.T) {
	hosts := []string{"ntp.example.net", "*.pool.example.org", "192.0.2.1", "2001:db8::1"}
	certPath, keyPath, err := GenerateSelfSigned(t.TempDir(), hosts, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadFiles(certPath, keyPath, t0)
	if err != nil {
		t.Fatal(err)
	}
	info := InfoOf(c, t0)
	if !slices.Equal(info.SANs, hosts) || info.Subject != "CN=ntp.example.net,O=timegate self-signed" {
		t.Errorf("SANs %v subject %q", info.SANs, info.Subject)
	}
	if info.DaysToExpiry != 365 {
		t.Errorf("DaysToExpiry %d, want 365", info.DaysToExpiry)
	}
}

func TestGenerateSelfSignedBadHosts(t *testing.T) {
	for _, h := range []string{"", "a b", "host:4460", "fe80::1%eth0", "[::1]", "a..b", "bad/name"} {
		dir := t.TempDir()
		if _, _, err := GenerateSelfSigned(dir, []string{"localhost", h}, t0, nil); !errors.Is(err, ErrBadHost) {
			t.Errorf("host %q: err = %v, want ErrBadHost", h, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("host %q: files written for a refused request", h)
		}
	}
}

func TestEnsureSelfSigned(t *testing.T) {
	dir := t.TempDir()
	fp := func(certPath, keyPath string, now time.Time) [32]byte {
		t.Helper()
		c, err := LoadFiles(certPath, keyPath, now)
		if err != nil {
			t.Fatal(err)
		}
		return InfoOf(c, now).Fingerprint
	}
	ensure := func(now time.Time, hosts []string, wantGenerated bool) [32]byte {
		t.Helper()
		certPath, keyPath, generated, err := EnsureSelfSigned(dir, hosts, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		if generated != wantGenerated {
			t.Fatalf("at %v hosts %v: generated = %v, want %v", now, hosts, generated, wantGenerated)
		}
		return fp(certPath, keyPath, now)
	}
	first := ensure(t0, nil, true)
	if ensure(t0.Add(time.Hour), nil, false) != first {
		t.Fatal("valid pair not reused")
	}
	if ensure(t0.Add(300*24*time.Hour), []string{"localhost"}, false) != first {
		t.Fatal("pair covering a subset of its names not reused")
	}
	// Within RenewBefore of expiry: replaced.
	renewed := ensure(t0.Add(SelfSignedValidity-RenewBefore), nil, true)
	if renewed == first {
		t.Fatal("expiring pair kept")
	}
	// A name it lacks: replaced.
	at := t0.Add(SelfSignedValidity)
	withHost := ensure(at, []string{"localhost", "gw.example"}, true)
	// A loosened key mode means the key may have leaked: replaced.
	if err := os.Chmod(filepath.Join(dir, SelfSignedKeyName), 0o644); err != nil {
		t.Fatal(err)
	}
	if ensure(at, []string{"gw.example"}, true) == withHost {
		t.Fatal("key with loose mode kept")
	}
	if fi, err := os.Stat(filepath.Join(dir, SelfSignedKeyName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("regenerated key mode: %v, %v", fi.Mode(), err)
	}
	// Half-written pair (crash between the key and the cert write): replaced.
	other := validPair(t, "p256")
	writeFile(t, filepath.Join(dir, SelfSignedKeyName), other.key, 0o600)
	ensure(at, []string{"gw.example"}, true)
}
