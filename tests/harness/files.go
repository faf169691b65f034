package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CertOptions shape a test certificate; the zero value gives what chrony and
// timegate need on loopback.
type CertOptions struct {
	// Name is the base of the file names: Name.pem and Name-key.pem. Default "cert".
	Name string
	// DNSNames default to localhost; IPs default to 127.0.0.1 and ::1. chrony checks
	// the name in its server line against these (SNI and SAN).
	DNSNames []string
	IPs      []net.IP
	// NotBefore and NotAfter default to an hour ago and a day ahead.
	NotBefore, NotAfter time.Time
}

// WriteCert writes a self-signed ECDSA P-256 certificate for localhost, 127.0.0.1
// and ::1 into dir and returns the certificate and key paths. The certificate is
// its own trust anchor: give its path to chrony's ntstrustedcerts (with
// nosystemcert) or to CertPool.
func WriteCert(t testing.TB, dir string) (certPEMPath, keyPEMPath string) {
	t.Helper()
	return WriteCertWith(t, dir, CertOptions{})
}

// WriteCertWith is WriteCert with options. Both files are replaced atomically
// (write to a temporary file, fsync, rename), so a test can swap the certificate
// under a running server. The key file has mode 0600 and the certificate 0644;
// chronyd reads both as root (see the package comment).
func WriteCertWith(t testing.TB, dir string, o CertOptions) (certPEMPath, keyPEMPath string) {
	t.Helper()
	certPEM, keyPEM, err := newCert(o)
	if err != nil {
		t.Fatalf("WriteCert: %v", err)
	}
	name := o.Name
	if name == "" {
		name = "cert"
	}
	certPEMPath = filepath.Join(dir, name+".pem")
	keyPEMPath = filepath.Join(dir, name+"-key.pem")
	if err := writeFileAtomic(keyPEMPath, keyPEM, 0o600); err != nil {
		t.Fatalf("WriteCert: %v", err)
	}
	if err := writeFileAtomic(certPEMPath, certPEM, 0o644); err != nil {
		t.Fatalf("WriteCert: %v", err)
	}
	return certPEMPath, keyPEMPath
}

func newCert(o CertOptions) (certPEM, keyPEM []byte, err error) {
	if o.DNSNames == nil {
		o.DNSNames = []string{"localhost"}
	}
	if o.IPs == nil {
		o.IPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(24 * time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.DNSNames[0], Organization: []string{"timegate tests"}},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
		// Self-signed and used as its own trust anchor, as `openssl req -x509` makes it.
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

// CertPool returns a pool holding the certificates of a PEM file, for Go TLS
// clients that must trust a WriteCert certificate.
func CertPool(t testing.TB, certPEMPath string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(certPEMPath)
	if err != nil {
		t.Fatalf("CertPool: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("CertPool: no certificate in %s", certPEMPath)
	}
	return pool
}

// Key is one symmetric key of a chrony/ntpd keys file.
type Key struct {
	ID     uint32
	Type   string // chrony name: AES128 (default), AES256, SHA1, SHA256, MD5, ...
	Secret []byte // written as HEX:
}

// keyLen gives the secret length NewKey generates for each type: the cipher key
// size for CMAC, the digest size for hashes (RFC 8573 §4 asks for at least that).
var keyLen = map[string]int{"AES128": 16, "AES256": 32, "MD5": 16, "SHA1": 20, "SHA256": 32, "SHA384": 48, "SHA512": 64}

// NewKey returns a key of the given type (AES128 when empty) with a random secret
// of the type's natural length.
func NewKey(t testing.TB, id uint32, typ string) Key {
	t.Helper()
	if typ == "" {
		typ = "AES128"
	}
	n, ok := keyLen[typ]
	if !ok {
		t.Fatalf("NewKey: unknown key type %q", typ)
	}
	k := Key{ID: id, Type: typ, Secret: make([]byte, n)}
	if _, err := rand.Read(k.Secret); err != nil {
		t.Fatalf("NewKey: %v", err)
	}
	return k
}

// Line renders the key in chrony's keys-file syntax: `1 AES128 HEX:0011...`.
func (k Key) Line() string {
	typ := k.Type
	if typ == "" {
		typ = "AES128"
	}
	return fmt.Sprintf("%d %s HEX:%s", k.ID, typ, strings.ToUpper(hex.EncodeToString(k.Secret)))
}

// WriteKeys writes keys to dir/keys in chrony's format with mode 0600 (readable
// by chronyd, which runs as root here, and not refused by timegate, which rejects
// group- or world-readable key files) and returns the path. It replaces the file
// atomically, so a test can change keys under a running daemon.
func WriteKeys(t testing.TB, dir string, keys ...Key) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# symmetric keys written by timegate/tests/harness\n")
	for _, k := range keys {
		b.WriteString(k.Line())
		b.WriteByte('\n')
	}
	path := filepath.Join(dir, "keys")
	if err := writeFileAtomic(path, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("WriteKeys: %v", err)
	}
	return path
}

// writeFileAtomic writes data to a temporary file beside path, fsyncs it and
// renames it over path, so a reader sees the old or the new file, never half.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
