package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Info describes a served certificate for logs, `gatectl` and metrics.
type Info struct {
	Subject   string
	Issuer    string
	SANs      []string // DNS names, then IP addresses
	KeyType   string   // "ECDSA P-256", "Ed25519", "RSA 2048"
	NotBefore time.Time
	NotAfter  time.Time
	// Fingerprint is the SHA-256 of the leaf's DER encoding, the value
	// `openssl x509 -noout -fingerprint -sha256` prints and clients pin.
	Fingerprint [sha256.Size]byte
	// DaysToExpiry is whole days from the time Info was computed to
	// NotAfter, rounded down: 0 means less than a day left, negative means
	// expired. It is the value to log and export as a gauge.
	DaysToExpiry int
	ChainLen     int // certificates sent, leaf included
}

// FingerprintString formats Fingerprint as colon-separated upper-case hex,
// as openssl prints it, so an operator can compare the two by eye.
func (i Info) FingerprintString() string {
	h := strings.ToUpper(hex.EncodeToString(i.Fingerprint[:]))
	var b strings.Builder
	for j := 0; j < len(h); j += 2 {
		if j > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[j : j+2])
	}
	return b.String()
}

// InfoOf describes c, whose Leaf must be set (Load and LoadFiles set it),
// with DaysToExpiry counted from now.
func InfoOf(c *tls.Certificate, now time.Time) Info {
	leaf := c.Leaf
	sans := make([]string, 0, len(leaf.DNSNames)+len(leaf.IPAddresses))
	sans = append(sans, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		sans = append(sans, ip.String())
	}
	return Info{
		Subject:      leaf.Subject.String(),
		Issuer:       leaf.Issuer.String(),
		SANs:         sans,
		KeyType:      keyType(leaf.PublicKey),
		NotBefore:    leaf.NotBefore,
		NotAfter:     leaf.NotAfter,
		Fingerprint:  sha256.Sum256(leaf.Raw),
		DaysToExpiry: daysUntil(leaf.NotAfter, now),
		ChainLen:     len(c.Certificate),
	}
}

// daysUntil rounds towards minus infinity so that an expired certificate is
// never reported as having 0 days left.
func daysUntil(t, now time.Time) int {
	d := t.Sub(now)
	days := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		days--
	}
	return days
}

func keyType(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}
