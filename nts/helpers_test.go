package nts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"math/big"
	mrand "math/rand/v2"
	"testing"
	"time"
)

// seeded returns a deterministic reader for reproducible tests.
func seeded(seed uint64) *mrand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return mrand.NewChaCha8(s)
}

var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testRing(t testing.TB, seed uint64) *KeyRing {
	t.Helper()
	r, err := NewKeyRing(testEpoch, seeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeExporter derives keys from the context alone, and records each call,
// so a test can tell which context produced which key.
type fakeExporter struct {
	labels   []string
	contexts [][]byte
}

func (f *fakeExporter) export(label string, context []byte, length int) ([]byte, error) {
	f.labels = append(f.labels, label)
	f.contexts = append(f.contexts, append([]byte(nil), context...))
	return fakeKey(context, length), nil
}

func fakeKey(context []byte, length int) []byte {
	k := make([]byte, length)
	for i := range k {
		k[i] = byte(i) ^ context[len(context)-1]*0x5a ^ context[3]
	}
	return k
}

// testCert makes a self-signed ECDSA P-256 certificate for name, and a pool
// that trusts it.
func testCert(t testing.TB, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func mustMessage(t testing.TB, recs ...Record) []byte {
	t.Helper()
	b, err := AppendMessage(nil, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func goodRequest() []Record {
	return []Record{NextProtocolRecord(ProtocolNTPv4), AEADRecord(AEADAESSIVCMAC256), EndOfMessage()}
}

func countCookies(recs []Record) int {
	n := 0
	for _, r := range recs {
		if r.Type == RecNewCookie {
			n++
		}
	}
	return n
}
