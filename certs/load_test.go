package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"timegate/internal/secfile"
)

func TestLoadKeyTypes(t *testing.T) {
	for _, tc := range []struct{ kind, keyType string }{
		{"p256", "ECDSA P-256"},
		{"p384", "ECDSA P-384"},
		{"ed25519", "Ed25519"},
		{"rsa2048", "RSA 2048"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			p := validPair(t, tc.kind)
			keyPEMs := map[string][]byte{"PKCS8": p.key}
			switch k := p.signer.(type) {
			case *rsa.PrivateKey:
				keyPEMs["PKCS1"] = pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k))
			case *ecdsa.PrivateKey:
				der, err := x509.MarshalECPrivateKey(k)
				if err != nil {
					t.Fatal(err)
				}
				// As `openssl ecparam -genkey` writes it: parameters first.
				keyPEMs["SEC1"] = concat(pemBlock("EC PARAMETERS", []byte{6, 8, 42}), pemBlock("EC PRIVATE KEY", der))
			}
			for enc, keyPEM := range keyPEMs {
				c, err := Load(p.cert, keyPEM, t0)
				if err != nil {
					t.Fatalf("%s: %v", enc, err)
				}
				if c.Leaf == nil || !bytes.Equal(c.Leaf.Raw, p.leaf.Raw) || len(c.Certificate) != 1 {
					t.Fatalf("%s: leaf or chain not set", enc)
				}
				if got := InfoOf(c, t0).KeyType; got != tc.keyType {
					t.Errorf("%s: KeyType %q, want %q", enc, got, tc.keyType)
				}
			}
		})
	}
}

func TestLoadChain(t *testing.T) {
	caKey := newKey(t, "p256")
	ca := signPair(t, caKey, caKey, nil, t0.Add(-time.Hour), t0.Add(1000*time.Hour), true)
	leafKey := newKey(t, "p256")
	leaf := signPair(t, leafKey, caKey, ca.leaf, t0.Add(-time.Hour), t0.Add(100*time.Hour), false)
	// openssl-style text between blocks is ignored.
	chainPEM := concat([]byte("subject=CN=localhost\n"), leaf.cert, []byte("issuer=CN=test CA\n"), ca.cert)
	c, err := Load(chainPEM, leaf.key, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 || !bytes.Equal(c.Certificate[1], ca.leaf.Raw) {
		t.Fatalf("chain has %d certificates, want leaf + CA", len(c.Certificate))
	}
	// An intermediate outside its validity is still served: clients judge it.
	old := signPair(t, caKey, caKey, nil, t0.Add(-2000*time.Hour), t0.Add(-1000*time.Hour), true)
	if _, err := Load(concat(leaf.cert, old.cert), leaf.key, t0); err != nil {
		t.Fatalf("expired intermediate: %v", err)
	}
	// The CA's key does not match the leaf, even though it is in the chain.
	if _, err := Load(chainPEM, ca.key, t0); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("CA key for leaf: err = %v, want ErrKeyMismatch", err)
	}
}

func TestLoadRefusals(t *testing.T) {
	a := validPair(t, "p256")
	b := validPair(t, "p256")
	ed := validPair(t, "ed25519")
	expired := makePair(t, "p256", t0.Add(-48*time.Hour), t0.Add(-time.Second))
	future := makePair(t, "p256", t0.Add(time.Second), t0.Add(48*time.Hour))
	weak := validPair(t, "rsa1024")
	p224 := validPair(t, "p224")
	garbled := pemBlock("CERTIFICATE", a.leaf.Raw[:len(a.leaf.Raw)-10])
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})

	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      error
	}{
		{"mismatched ECDSA", a.cert, b.key, ErrKeyMismatch},
		{"mismatched types", a.cert, ed.key, ErrKeyMismatch},
		{"expired", expired.cert, expired.key, ErrExpired},
		{"not yet valid", future.cert, future.key, ErrNotYetValid},
		{"RSA 1024", weak.cert, weak.key, ErrWeakKey},
		{"P-224", p224.cert, p224.key, ErrUnsupportedKey},
		{"X25519 key", a.cert, x25519Key(t), ErrUnsupportedKey},
		{"empty cert", nil, a.key, ErrNoCertificate},
		{"key as cert", a.key, a.key, ErrKeyInCertFile},
		{"cert with key inside", concat(a.cert, a.key), a.key, ErrKeyInCertFile},
		{"truncated DER", garbled, a.key, ErrBadCertificate},
		{"no key", a.cert, a.cert, ErrNoKey},
		{"two keys", a.cert, concat(a.key, b.key), ErrMultipleKeys},
		{"encrypted PKCS8", a.cert, pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), ErrEncryptedKey},
		{"encrypted legacy", a.cert, encrypted, ErrEncryptedKey},
		{"garbage key", a.cert, pemBlock("PRIVATE KEY", []byte("nope")), ErrBadKey},
		{"DSA key block", a.cert, pemBlock("DSA PRIVATE KEY", []byte{1}), ErrUnsupportedKey},
		{"cert only PEM in key", a.cert, []byte("not PEM at all"), ErrNoKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.cert, tc.key, t0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if c != nil {
				t.Fatal("refused pair returned a certificate")
			}
		})
	}
}

func TestLoadValidityBoundaries(t *testing.T) {
	p := makePair(t, "p256", t0, t0.Add(time.Hour))
	for _, tc := range []struct {
		now  time.Time
		want error
	}{
		{t0.Add(-time.Second), ErrNotYetValid},
		{t0, nil},
		{t0.Add(time.Hour), nil},
		{t0.Add(time.Hour + time.Second), ErrExpired},
	} {
		if _, err := Load(p.cert, p.key, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("now %v: err = %v, want %v", tc.now, err, tc.want)
		}
	}
}

// Errors from files name the file the operator must fix.
func TestLoadFilesErrorsNameFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := validPair(t, "p256"), validPair(t, "p256")
	certFile, keyFile := filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key")
	writeFile(t, certFile, a.cert, 0o644)
	writeFile(t, keyFile, a.key, 0o600)
	if _, err := LoadFiles(certFile, keyFile, t0); err != nil {
		t.Fatal(err)
	}

	writeFile(t, keyFile, a.key, 0o660)
	_, err := LoadFiles(certFile, keyFile, t0)
	if !errors.Is(err, secfile.ErrInsecureMode) || !strings.Contains(err.Error(), keyFile) ||
		!strings.Contains(err.Error(), "0660") {
		t.Fatalf("group-writable key: err = %v", err)
	}

	writeFile(t, keyFile, b.key, 0o600)
	_, err = LoadFiles(certFile, keyFile, t0)
	if !errors.Is(err, ErrKeyMismatch) || !strings.Contains(err.Error(), certFile) || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("mismatch: err = %v", err)
	}

	_, err = LoadFiles(certFile, keyFile, t0.Add(365*24*time.Hour))
	if !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("mismatch is checked before validity, got %v", err)
	}
	writeFile(t, keyFile, a.key, 0o600)
	_, err = LoadFiles(certFile, keyFile, t0.Add(365*24*time.Hour))
	if !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("expired: err = %v", err)
	}

	missing := filepath.Join(dir, "missing.crt")
	if _, err := LoadFiles(missing, keyFile, t0); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing cert: err = %v", err)
	}
	big := filepath.Join(dir, "big.crt")
	writeFile(t, big, make([]byte, secfile.MaxSize+1), 0o644)
	if _, err := LoadFiles(big, keyFile, t0); !errors.Is(err, ErrCertFileTooLarge) {
		t.Fatalf("huge cert file: err = %v", err)
	}
}

func TestInfo(t *testing.T) {
	notAfter := t0.Add(10 * 24 * time.Hour)
	p := makePair(t, "p256", t0.Add(-time.Hour), notAfter)
	c, err := Load(p.cert, p.key, t0)
	if err != nil {
		t.Fatal(err)
	}
	info := InfoOf(c, t0)
	if info.Fingerprint != sha256.Sum256(p.leaf.Raw) {
		t.Error("fingerprint is not SHA-256 of the leaf DER")
	}
	fp := info.FingerprintString()
	if len(fp) != 32*3-1 || strings.Count(fp, ":") != 31 || strings.ToUpper(fp) != fp {
		t.Errorf("FingerprintString %q is not openssl's format", fp)
	}
	if strings.Join(info.SANs, ",") != "localhost,127.0.0.1" || info.Subject != "CN=localhost" || info.ChainLen != 1 {
		t.Errorf("info = %+v", info)
	}
	for _, tc := range []struct {
		now  time.Time
		days int
	}{
		{t0, 10},
		{notAfter.Add(-36 * time.Hour), 1},
		{notAfter.Add(-24 * time.Hour), 1},
		{notAfter.Add(-time.Nanosecond), 0},
		{notAfter, 0},
		{notAfter.Add(time.Nanosecond), -1},
		{notAfter.Add(24 * time.Hour), -1},
		{notAfter.Add(25 * time.Hour), -2},
	} {
		if got := InfoOf(c, tc.now).DaysToExpiry; got != tc.days {
			t.Errorf("%v before expiry: DaysToExpiry %d, want %d", notAfter.Sub(tc.now), got, tc.days)
		}
	}
}
