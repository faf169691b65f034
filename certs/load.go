// Package certs loads, checks and hot-swaps the TLS certificate and private
// key of the NTS-KE server (RFC 8915 §4 runs NTS-KE over TLS 1.3).
//
// A pair is served only after every check passed: the key file is private,
// every certificate in the chain parses, the leaf's public key is the private
// key's, and the leaf is valid now. A Store swaps a new pair in atomically
// through tls.Config.GetCertificate, so a handshake in progress finishes with
// the certificate it started with and a bad or half-replaced pair on disk is
// never served: the previous one stays.
//
// The package does no logging; it returns errors and Events for the caller.
// A daemon wires it as:
//
//	store, err := certs.NewStore(certFile, keyFile, certs.Options{})
//	cfg := &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: store.GetCertificate}
//	go store.Watch(ctx, 0, logEvent) // and store.Reload() on SIGHUP
//	days := store.Info().DaysToExpiry // log it, export it as a gauge
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"timegate/internal/secfile"
)

// Key size limits for RSA.
const (
	// MinRSABits follows NIST SP 800-131A and the CA/Browser Forum: smaller
	// keys are within reach of factoring.
	MinRSABits = 2048
	// MaxRSABits is the largest key Go's TLS client accepts (larger keys make
	// every verification a CPU-exhaustion lever); the server side would also
	// spend ~8x longer per handshake per doubling of the modulus.
	MaxRSABits = 8192
)

// maxCertFileSize caps the certificate file as secfile.MaxSize caps the key
// file: a real chain is a few KiB, and a path pointed at a huge file must not
// exhaust memory on every reload.
const maxCertFileSize = secfile.MaxSize

// Errors returned when a pair is refused. They are wrapped with the file
// names and details; compare with errors.Is.
var (
	ErrNoCertificate    = errors.New("certs: no CERTIFICATE block")
	ErrBadCertificate   = errors.New("certs: certificate does not parse")
	ErrKeyInCertFile    = errors.New("certs: private key found in the certificate file")
	ErrNoKey            = errors.New("certs: no private key block")
	ErrMultipleKeys     = errors.New("certs: more than one private key block")
	ErrEncryptedKey     = errors.New("certs: encrypted private keys are not supported")
	ErrBadKey           = errors.New("certs: private key does not parse")
	ErrUnsupportedKey   = errors.New("certs: unsupported key type")
	ErrWeakKey          = errors.New("certs: key too small")
	ErrKeyMismatch      = errors.New("certs: certificate does not match private key")
	ErrNotYetValid      = errors.New("certs: certificate not yet valid")
	ErrExpired          = errors.New("certs: certificate expired")
	ErrCertFileTooLarge = errors.New("certs: certificate file too large")
)

// Load parses a PEM certificate chain (leaf first) and a PEM private key
// and returns them ready for tls.Config, with Leaf set, after the checks
// described in the package comment, with validity judged at now.
func Load(certPEM, keyPEM []byte, now time.Time) (*tls.Certificate, error) {
	return load(certPEM, keyPEM, "certificate PEM", "key PEM", now)
}

// LoadFiles is Load on files. The key file is read with secfile.ReadPrivate,
// so a key readable or writable by group or others is refused. Every error
// names the file it is about.
func LoadFiles(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	return LoadFilesOwned(certFile, keyFile, now)
}

// LoadFilesOwned is LoadFiles for a key file that one of owners may own
// besides root and the effective user (secfile.ReadPrivateOwned).
func LoadFilesOwned(certFile, keyFile string, now time.Time, owners ...int) (*tls.Certificate, error) {
	certPEM, err := readCapped(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := secfile.ReadPrivateOwned(keyFile, owners...)
	if err != nil {
		return nil, fmt.Errorf("certs: key file: %w", err)
	}
	return load(certPEM, keyPEM, certFile, keyFile, now)
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("certs: certificate file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCertFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("certs: certificate file %s: %w", path, err)
	}
	if len(data) > maxCertFileSize {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrCertFileTooLarge, path, maxCertFileSize)
	}
	return data, nil
}

// load runs the checks as named steps; certName and keyName label errors.
func load(certPEM, keyPEM []byte, certName, keyName string, now time.Time) (*tls.Certificate, error) {
	chain, ders, err := parseChain(certPEM, certName)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM, keyName)
	if err != nil {
		return nil, err
	}
	leaf := chain[0]
	if err := checkMatch(leaf, key, certName, keyName); err != nil {
		return nil, err
	}
	if err := checkValidity(leaf, certName, now); err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: ders, PrivateKey: key, Leaf: leaf}, nil
}

// parseChain parses every CERTIFICATE block, leaf first. Text between
// blocks (openssl's "subject=" and "Bag Attributes" lines) is ignored, as
// are other block types, except a private key: a key in the certificate
// file, which is normally world-readable, has leaked.
func parseChain(data []byte, name string) ([]*x509.Certificate, [][]byte, error) {
	var chain []*x509.Certificate
	var ders [][]byte
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return nil, nil, fmt.Errorf("%w: %s block %d is %q; keep the key in its own file with mode 0600",
				ErrKeyInCertFile, name, n, block.Type)
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s certificate %d: %w", ErrBadCertificate, name, len(chain)+1, err)
		}
		chain = append(chain, c)
		ders = append(ders, block.Bytes)
	}
	if len(chain) == 0 {
		return nil, nil, fmt.Errorf("%w in %s", ErrNoCertificate, name)
	}
	return chain, ders, nil
}

// parseKey parses the one private key block of a key file: PKCS #8
// ("PRIVATE KEY"), PKCS #1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY").
// Other blocks, such as the "EC PARAMETERS" openssl ecparam writes, are
// ignored. Two keys are refused rather than guessing which one is meant.
func parseKey(data []byte, name string) (crypto.Signer, error) {
	var found *pem.Block
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w in %s", ErrMultipleKeys, name)
		}
		found = block
	}
	if found == nil {
		return nil, fmt.Errorf("%w in %s", ErrNoKey, name)
	}
	if found.Type == "ENCRYPTED PRIVATE KEY" || found.Headers["Proc-Type"] != "" {
		return nil, fmt.Errorf("%w: %s (the daemon cannot prompt for a passphrase)", ErrEncryptedKey, name)
	}
	var key any
	var err error
	switch found.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(found.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(found.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(found.Bytes)
	default:
		return nil, fmt.Errorf("%w: %s has a %q block", ErrUnsupportedKey, name, found.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadKey, name, err)
	}
	return checkKeyType(key, name)
}

// checkKeyType accepts the signature keys that TLS 1.3 NTS clients (chrony
// with GnuTLS, NTPsec and ntpd-rs with OpenSSL or rustls) can verify.
func checkKeyType(key any, name string) (crypto.Signer, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
		return nil, fmt.Errorf("%w: %s: ECDSA curve %s", ErrUnsupportedKey, name, k.Curve.Params().Name)
	case ed25519.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		bits := k.N.BitLen()
		if bits < MinRSABits {
			return nil, fmt.Errorf("%w: %s: RSA %d bits, need at least %d", ErrWeakKey, name, bits, MinRSABits)
		}
		if bits > MaxRSABits {
			return nil, fmt.Errorf("%w: %s: RSA %d bits, TLS clients refuse more than %d",
				ErrUnsupportedKey, name, bits, MaxRSABits)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: %s holds a %T; use ECDSA (P-256, P-384, P-521), Ed25519 or RSA",
		ErrUnsupportedKey, name, key)
}

// checkMatch compares the leaf's public key with the private key's. Every
// standard key type has an Equal method comparing the full public value.
func checkMatch(leaf *x509.Certificate, key crypto.Signer, certName, keyName string) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return fmt.Errorf("%w: the first certificate in %s is not for the key in %s",
			ErrKeyMismatch, certName, keyName)
	}
	return nil
}

// checkValidity checks only the leaf: intermediates that expired are
// sometimes served on purpose (cross-signs for old clients), and clients
// judge the chain themselves.
func checkValidity(leaf *x509.Certificate, name string, now time.Time) error {
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("%w: %s is valid from %s, now is %s", ErrNotYetValid, name,
			leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("%w: %s expired at %s, now is %s", ErrExpired, name,
			leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}
