// Package symkey implements the symmetric-key NTP MACs of RFC 8573 (AES-CMAC)
// and the legacy MD5 and SHA-1 MACs of RFC 5905 §7.3, with the keys-file
// format shared by chrony and ntpd.
//
// An NTPv4 MAC trails the packet (RFC 5905 §7.3, RFC 8573 §4):
//
//	+------------------+----------------------------------+
//	| Key ID (4, BE)   | digest: Key.Size() = 16 or 20    |
//	+------------------+----------------------------------+
//
// This package computes and checks the digest over the packet bytes that
// precede the MAC; the ntp package places the key ID in front.
package symkey

import "strings"

// Type is a MAC algorithm.
type Type uint8

const (
	// AES128CMAC is AES-CMAC with a 16-byte key (RFC 8573 §4), the
	// algorithm RFC 8573 makes mandatory.
	AES128CMAC Type = iota + 1
	// AES256CMAC is AES-CMAC with a 32-byte key, as chrony's AES256.
	AES256CMAC
	// SHA1 is SHA-1(key ‖ packet), 20 bytes: legacy, kept for old peers.
	SHA1
	// MD5 is MD5(key ‖ packet), 16 bytes (RFC 5905 §7.3), which RFC 8573
	// deprecates: legacy, kept for old peers.
	MD5
)

// String returns chrony's name for the type, the name Parse prefers.
func (t Type) String() string {
	switch t {
	case AES128CMAC:
		return "AES128"
	case AES256CMAC:
		return "AES256"
	case SHA1:
		return "SHA1"
	case MD5:
		return "MD5"
	}
	return "Type(invalid)"
}

// Legacy reports whether the type is one RFC 8573 replaces (MD5, SHA-1).
func (t Type) Legacy() bool { return t == SHA1 || t == MD5 }

// MACSize is the digest length the type puts after the key ID.
func (t Type) MACSize() int {
	if t == SHA1 {
		return 20
	}
	return 16
}

// KeySize is the exact key length an AES-CMAC type needs, or 0 for the hash
// types, which take keys of any length.
func (t Type) KeySize() int {
	switch t {
	case AES128CMAC:
		return 16
	case AES256CMAC:
		return 32
	}
	return 0
}

func (t Type) valid() bool { return t >= AES128CMAC && t <= MD5 }

// lookupType maps the names chrony (AES128, SHA1, MD5), ntpd (M, MD5, SHA1,
// AES128CMAC) and NTPsec (AES-128) write, case-insensitively.
func lookupType(name string) (Type, bool) {
	switch strings.ToUpper(name) {
	case "AES128", "AES128CMAC", "AES-128":
		return AES128CMAC, true
	case "AES256", "AES256CMAC", "AES-256":
		return AES256CMAC, true
	case "SHA1", "SHA-1":
		return SHA1, true
	case "MD5", "M":
		return MD5, true
	}
	return 0, false
}

// longDigest returns the digest length of the hashes chrony accepts but an
// NTPv4 MAC cannot carry whole: RFC 7822 §7.5 caps the MAC at 24 octets
// (4-byte key ID + 20-byte digest), and anything longer would be parsed as an
// extension field. chrony truncates them to 20 bytes; timegate refuses rather
// than carry a variant no RFC defines.
func longDigest(name string) int {
	switch strings.ToUpper(name) {
	case "SHA224", "SHA3-224":
		return 28
	case "TIGER":
		return 24
	case "SHA256", "SHA3-256":
		return 32
	case "SHA384", "SHA3-384":
		return 48
	case "SHA512", "SHA3-512", "WHIRLPOOL":
		return 64
	}
	return 0
}
