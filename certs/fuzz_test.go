package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary certificate and key PEM to Load. Whatever it
// accepts must be a pair that works: the private key produces signatures
// the leaf's public key verifies (checked independently of Load's own
// comparison), the leaf is the first certificate sent, and the leaf is
// valid at the time given.
func FuzzLoad(f *testing.F) {
	a, b := validPair(f, "p256"), validPair(f, "ed25519")
	r := validPair(f, "rsa2048")
	expired := makePair(f, "p256", t0.Add(-48*time.Hour), t0.Add(-time.Hour))
	f.Add(a.cert, a.key)
	f.Add(b.cert, b.key)
	f.Add(r.cert, r.key)
	f.Add(a.cert, b.key)
	f.Add(b.cert, a.key)
	f.Add(r.cert, a.key)
	f.Add(expired.cert, expired.key)
	f.Add(concat(a.cert, b.cert), a.key)
	f.Add(concat(b.cert, a.cert), a.key)
	f.Add(a.cert, concat(a.key, b.key))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), a.key)
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		c, err := Load(certPEM, keyPEM, t0)
		if err != nil {
			if c != nil {
				t.Fatal("error with a certificate")
			}
			return
		}
		if c.Leaf == nil || len(c.Certificate) == 0 || !bytes.Equal(c.Leaf.Raw, c.Certificate[0]) {
			t.Fatal("leaf is not the first certificate")
		}
		if t0.Before(c.Leaf.NotBefore) || t0.After(c.Leaf.NotAfter) {
			t.Fatal("accepted a leaf not valid now")
		}
		proveKey(t, c.Leaf, c.PrivateKey.(crypto.Signer))
	})
}

// proveKey signs with key and verifies with the leaf: it fails for any
// pair whose halves do not belong together.
func proveKey(t *testing.T, leaf *x509.Certificate, key crypto.Signer) {
	t.Helper()
	msg := []byte("timegate certs.FuzzLoad")
	digest := sha256.Sum256(msg)
	var alg x509.SignatureAlgorithm
	var sig []byte
	var err error
	switch key.(type) {
	case *ecdsa.PrivateKey:
		alg = x509.ECDSAWithSHA256
		sig, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
	case *rsa.PrivateKey:
		alg = x509.SHA256WithRSA
		sig, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
	case ed25519.PrivateKey:
		alg = x509.PureEd25519
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	default:
		t.Fatalf("accepted key type %T", key)
	}
	if err != nil {
		t.Fatalf("accepted key cannot sign: %v", err)
	}
	if err := leaf.CheckSignature(alg, msg, sig); err != nil {
		t.Fatalf("accepted a pair whose key does not match the leaf: %v", err)
	}
}
