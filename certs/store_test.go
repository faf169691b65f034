package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"timegate/internal/secfile"
)

func fixedNow() time.Time { return t0 }

// files writes p into dir as cert.pem and key.pem and returns their paths.
func files(t *testing.T, dir string, p pair) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, p.cert, 0o644)
	writeFile(t, keyFile, p.key, 0o600)
	return certFile, keyFile
}

func servedFP(t *testing.T, s *Store) [32]byte {
	t.Helper()
	c, err := s.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return fingerprint(pair{leaf: c.Leaf})
}

func TestNewStoreRefusesBadPair(t *testing.T) {
	dir := t.TempDir()
	a, b := validPair(t, "p256"), validPair(t, "p256")
	certFile, keyFile := files(t, dir, a)
	writeFile(t, keyFile, b.key, 0o600)
	if s, err := NewStore(certFile, keyFile, Options{Now: fixedNow}); !errors.Is(err, ErrKeyMismatch) || s != nil {
		t.Fatalf("NewStore on a mismatched pair: %v, %v", s, err)
	}
}

// Every kind of broken replacement leaves the previous pair served.
func TestReloadKeepsOldPair(t *testing.T) {
	dir := t.TempDir()
	a, b := validPair(t, "p256"), validPair(t, "ed25519")
	expired := makePair(t, "p256", t0.Add(-48*time.Hour), t0.Add(-time.Hour))
	certFile, keyFile := files(t, dir, a)
	s, err := NewStore(certFile, keyFile, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := s.GetCertificate(nil)
	for _, tc := range []struct {
		name      string
		cert, key []byte
		keyMode   os.FileMode
		want      error
	}{
		{"new cert, old key", b.cert, a.key, 0o600, ErrKeyMismatch},
		{"old cert, new key", a.cert, b.key, 0o600, ErrKeyMismatch},
		{"truncated cert", b.cert[:len(b.cert)/2], b.key, 0o600, ErrNoCertificate},
		{"empty cert", nil, b.key, 0o600, ErrNoCertificate},
		{"key readable by others", b.cert, b.key, 0o604, secfile.ErrInsecureMode},
		{"expired pair", expired.cert, expired.key, 0o600, ErrExpired},
	} {
		writeFile(t, certFile, tc.cert, 0o644)
		writeFile(t, keyFile, tc.key, tc.keyMode)
		changed, err := s.Reload()
		if !errors.Is(err, tc.want) || changed {
			t.Errorf("%s: Reload = %v, %v; want false, %v", tc.name, changed, err, tc.want)
		}
		if c, _ := s.GetCertificate(nil); c != orig {
			t.Fatalf("%s: served pair replaced", tc.name)
		}
		if s.Info().Fingerprint != fingerprint(a) {
			t.Fatalf("%s: Info describes another pair", tc.name)
		}
	}
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(); !errors.Is(err, os.ErrNotExist) || servedFP(t, s) != fingerprint(a) {
		t.Fatalf("missing cert file: %v", err)
	}

	files(t, dir, b)
	if changed, err := s.Reload(); err != nil || !changed {
		t.Fatalf("good new pair: Reload = %v, %v", changed, err)
	}
	if servedFP(t, s) != fingerprint(b) || s.Info().KeyType != "Ed25519" {
		t.Fatal("new pair not served after a successful reload")
	}
	// Rewriting identical content is no change.
	files(t, dir, b)
	if changed, err := s.Reload(); err != nil || changed {
		t.Fatalf("same pair rewritten: Reload = %v, %v", changed, err)
	}
}

func TestStoreInfoUsesNow(t *testing.T) {
	dir := t.TempDir()
	p := makePair(t, "p256", t0.Add(-time.Hour), t0.Add(40*24*time.Hour))
	certFile, keyFile := files(t, dir, p)
	now := t0
	s, err := NewStore(certFile, keyFile, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Info().DaysToExpiry; d != 40 {
		t.Fatalf("DaysToExpiry = %d, want 40", d)
	}
	now = t0.Add(50 * 24 * time.Hour)
	if d := s.Info().DaysToExpiry; d != -10 {
		t.Fatalf("after expiry DaysToExpiry = %d, want -10", d)
	}
	// The served pair expired; a reload of the same files is refused and
	// the pair stays (serving it is the caller's call, not ours to drop).
	if _, err := s.Reload(); !errors.Is(err, ErrExpired) {
		t.Fatalf("Reload of expired files: %v", err)
	}
}

// The Store's certificates work as tls.Config.GetCertificate for a TLS 1.3
// server: the client verifies the chain, the name and CertificateVerify.
func TestGetCertificateHandshake(t *testing.T) {
	for _, kind := range []string{"p256", "p384", "ed25519", "rsa2048"} {
		t.Run(kind, func(t *testing.T) {
			p := makePair(t, kind, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			certFile, keyFile := files(t, t.TempDir(), p)
			s, err := NewStore(certFile, keyFile, Options{})
			if err != nil {
				t.Fatal(err)
			}
			addr := serveTLS(t, s)
			if got, err := handshake(addr, rootsOf(p)); err != nil || got != fingerprint(p) {
				t.Fatalf("handshake: %v", err)
			}
		})
	}
}

func rootsOf(ps ...pair) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, p := range ps {
		pool.AddCert(p.leaf)
	}
	return pool
}

// BenchmarkReload is the cost of one reload of an ECDSA pair (two reads,
// parsing, checks), which a failing pair costs at every Watch poll.
func BenchmarkReload(b *testing.B) {
	p := validPair(b, "p256")
	dir := b.TempDir()
	certFile, keyFile := filepath.Join(dir, "c"), filepath.Join(dir, "k")
	writeFile(b, certFile, p.cert, 0o644)
	writeFile(b, keyFile, p.key, 0o600)
	s, err := NewStore(certFile, keyFile, Options{Now: fixedNow})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Reload(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPollUnchanged is the cost of a Watch poll when nothing changed.
func BenchmarkPollUnchanged(b *testing.B) {
	p := validPair(b, "p256")
	dir := b.TempDir()
	certFile, keyFile := filepath.Join(dir, "c"), filepath.Join(dir, "k")
	writeFile(b, certFile, p.cert, 0o644)
	writeFile(b, keyFile, p.key, 0o600)
	s, err := NewStore(certFile, keyFile, Options{Now: fixedNow})
	if err != nil {
		b.Fatal(err)
	}
	var w watchState
	for b.Loop() {
		if _, report := s.poll(&w); report {
			b.Fatal("event without change")
		}
	}
}

func BenchmarkGetCertificate(b *testing.B) {
	p := validPair(b, "p256")
	dir := b.TempDir()
	certFile, keyFile := filepath.Join(dir, "c"), filepath.Join(dir, "k")
	writeFile(b, certFile, p.cert, 0o644)
	writeFile(b, keyFile, p.key, 0o600)
	s, err := NewStore(certFile, keyFile, Options{Now: fixedNow})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c, _ := s.GetCertificate(nil); c == nil {
				b.Fatal("nil certificate")
			}
		}
	})
}
