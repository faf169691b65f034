package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"timegate/internal/secfile"
)

// File names GenerateSelfSigned writes in its directory.
const (
	SelfSignedCertName = "selfsigned-cert.pem"
	SelfSignedKeyName  = "selfsigned-key.pem"
)

const (
	// SelfSignedValidity is one year: long enough that a test or a first
	// run never meets an expiry, short enough to bound a leaked key's use.
	SelfSignedValidity = 365 * 24 * time.Hour
	// SelfSignedBackdate lets a client whose clock is somewhat behind accept
	// a certificate made a moment ago; an NTS client is, by nature, one that
	// may not have the right time yet.
	SelfSignedBackdate = time.Hour
	// RenewBefore is how close to expiry EnsureSelfSigned replaces a
	// certificate, leaving a month to notice and re-distribute it.
	RenewBefore = 30 * 24 * time.Hour
)

// ErrBadHost is returned for a host name that cannot go in a certificate.
var ErrBadHost = errors.New("certs: invalid host for certificate")

// DefaultHosts are the names of a self-signed certificate when none are
// given: loopback, for first starts and tests. The daemon may add
// os.Hostname().
func DefaultHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// GenerateSelfSigned writes a new ECDSA P-256 key (mode 0600) and a
// self-signed certificate for it (mode 0644) into dir, creating dir with
// mode 0700 if needed, and returns their paths. The certificate is an end
// entity (CA:false, serverAuth) valid from now-SelfSignedBackdate for
// SelfSignedValidity, naming hosts (IP addresses become IP SANs, the rest
// DNS SANs), or DefaultHosts if hosts is empty.
//
// rand (nil means crypto/rand) draws the serial number. Since Go 1.26 key
// generation ignores its io.Reader and always uses a secure source; tests
// wanting determinism use testing/cryptotest.SetGlobalRandom.
func GenerateSelfSigned(dir string, hosts []string, now time.Time, rand io.Reader) (certPath, keyPath string, err error) {
	tmpl, err := selfSignedTemplate(hosts, now)
	if err != nil {
		return "", "", err
	}
	if rand == nil {
		rand = crand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return "", "", fmt.Errorf("certs: generating key: %w", err)
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("certs: creating certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("certs: encoding key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("certs: %w", err)
	}
	certPath = filepath.Join(dir, SelfSignedCertName)
	keyPath = filepath.Join(dir, SelfSignedKeyName)
	// Key first: a crash between the writes leaves a mismatched pair, which
	// EnsureSelfSigned detects and replaces, never a new cert for an old key
	// that passes.
	if err := secfile.WriteAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("certs: %w", err)
	}
	if err := secfile.WriteAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", fmt.Errorf("certs: %w", err)
	}
	return certPath, keyPath, nil
}

func selfSignedTemplate(hosts []string, now time.Time) (*x509.Certificate, error) {
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			CommonName:   hosts[0],
			Organization: []string{"timegate self-signed"},
		},
		NotBefore:             now.Add(-SelfSignedBackdate),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	for _, h := range hosts {
		if a, err := netip.ParseAddr(h); err == nil {
			if a.Zone() != "" {
				return nil, fmt.Errorf("%w: %q: an IP address in a certificate has no zone", ErrBadHost, h)
			}
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
			continue
		}
		if !validDNSName(h) {
			return nil, fmt.Errorf("%w: %q is neither an IP address nor a DNS name", ErrBadHost, h)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	return tmpl, nil
}

// validDNSName is a loose syntax check (letters, digits, '-', '_', '.',
// a leading "*." wildcard; RFC 1035 length limits) that keeps typos such as
// "host:4460" or "a b" out of a certificate clients would then reject.
func validDNSName(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

// EnsureSelfSigned returns the self-signed pair in dir, generating it with
// GenerateSelfSigned (generated = true) when it is missing, does not load
// (mismatched, key mode loosened, unreadable), does not cover every one of
// hosts, or expires within RenewBefore of now. A regenerated certificate
// must be re-distributed to clients that trust it, so the caller should say
// so loudly.
func EnsureSelfSigned(dir string, hosts []string, now time.Time, rand io.Reader, owners ...int) (certPath, keyPath string, generated bool, err error) {
	certPath = filepath.Join(dir, SelfSignedCertName)
	keyPath = filepath.Join(dir, SelfSignedKeyName)
	if c, err := LoadFilesOwned(certPath, keyPath, now, owners...); err == nil && reusable(c.Leaf, hosts, now) {
		return certPath, keyPath, false, nil
	}
	certPath, keyPath, err = GenerateSelfSigned(dir, hosts, now, rand)
	if err != nil {
		return "", "", false, err
	}
	return certPath, keyPath, true, nil
}

func reusable(leaf *x509.Certificate, hosts []string, now time.Time) bool {
	if leaf.NotAfter.Sub(now) <= RenewBefore {
		return false
	}
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}
