// Package symkey implements the symmetric-key NTP MACs of RFC 8573 (AES-CMAC)
// and the digest MACs of RFC 5905 §7.3 (MD5, SHA-1, and the SHA-2 and SHA-3
// digests chrony and NTPsec accept), with the keys-file formats of chrony and
// ntpd/NTPsec.
//
// An NTP MAC trails the packet (RFC 5905 §7.3, RFC 8573 §4):
//
//	+------------------+----------------------------------------+
//	| Key ID (4, BE)   | digest: Key.MACLen(version) octets     |
//	+------------------+----------------------------------------+
//
// In an NTPv4 packet the digest is at most 20 octets: RFC 7822 §7.5 caps the
// MAC at 24 octets, anything longer would be read as an extension field.
// Longer digests are therefore truncated to 20 octets in NTPv4 (what chrony
// and NTPsec do) and carried whole in NTPv3 packets, which have no extension
// fields (what chrony does: it sends NTPv3 requests for such keys, so an
// SHA256-keyed request is 48 + 4 + 32 = 84 octets).
//
// This package computes and checks the digest over the packet bytes that
// precede the MAC; the ntp package places the key ID in front.
package symkey

import "strings"

// Type is a MAC algorithm.
type Type uint8

// The values of the first four are those of earlier releases; new types were
// appended so that nothing that stored a Type changes meaning.
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
	// SHA256 ... SHA3_512 are H(key ‖ packet) as chrony (and NTPsec, for
	// the SHA-2 ones) compute them; their digests exceed 20 bytes.
	SHA256
	SHA384
	SHA512
	SHA3_224
	SHA3_256
	SHA3_384
	SHA3_512
	// SHA224 is NTPsec's (OpenSSL's) sha224; chrony does not offer it.
	SHA224

	lastType = SHA224
)

// String returns chrony's name for the type, the name Parse prefers (SHA224,
// which chrony lacks, gets the name NTPsec users write in upper case).
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
	case SHA256:
		return "SHA256"
	case SHA384:
		return "SHA384"
	case SHA512:
		return "SHA512"
	case SHA3_224:
		return "SHA3-224"
	case SHA3_256:
		return "SHA3-256"
	case SHA3_384:
		return "SHA3-384"
	case SHA3_512:
		return "SHA3-512"
	case SHA224:
		return "SHA224"
	}
	return "Type(invalid)"
}

// CMAC reports whether the type is AES-CMAC, the algorithm RFC 8573 makes
// mandatory.
func (t Type) CMAC() bool { return t == AES128CMAC || t == AES256CMAC }

// Legacy reports whether the type is one RFC 8573 replaces (MD5, SHA-1).
func (t Type) Legacy() bool { return t == SHA1 || t == MD5 }

// MACSize is the whole digest length of the type.
func (t Type) MACSize() int {
	switch t {
	case SHA1:
		return 20
	case SHA224, SHA3_224:
		return 28
	case SHA256, SHA3_256:
		return 32
	case SHA384, SHA3_384:
		return 48
	case SHA512, SHA3_512:
		return 64
	}
	return 16
}

// V4MaxDigest is the longest digest an NTPv4 MAC carries (RFC 7822 §7.5:
// 24-octet MAC = 4-octet key ID + 20); longer digests are truncated to it.
const V4MaxDigest = 20

// MACLen is the digest length carried in a packet of NTP version vn: the
// whole digest, except that NTPv4 truncates digests longer than
// V4MaxDigest, as chrony's ntp_auth.c and NTPsec do.
func (t Type) MACLen(vn uint8) int {
	n := t.MACSize()
	if vn >= 4 && n > V4MaxDigest {
		return V4MaxDigest
	}
	return n
}

// PreferredVersion is the NTP version a client should send with this key:
// 3 when the digest is longer than an NTPv4 MAC can carry, so that the whole
// digest protects the packet (chrony's NAU_GetSuggestedNtpVersion), 4
// otherwise.
func (t Type) PreferredVersion() uint8 {
	if t.MACSize() > V4MaxDigest {
		return 3
	}
	return 4
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

func (t Type) valid() bool { return t >= AES128CMAC && t <= lastType }

// lookupType maps the names chrony (AES128, SHA1, SHA256, SHA3-256, ...),
// ntpd (M, MD5, SHA, SHA1, AES128CMAC) and NTPsec (lower-case OpenSSL names:
// aes-128, sha256, sha3-256, ...) write, case-insensitively. chrony itself
// matches upper case only; accepting both costs nothing and lets one file
// serve both daemons.
func lookupType(name string) (Type, bool) {
	switch strings.ToUpper(name) {
	// "AES" is what NTPsec's ntpkeygen writes; NTPsec reads it as AES-128-CMAC.
	case "AES128", "AES128CMAC", "AES-128", "AES-128-CMAC", "AES":
		return AES128CMAC, true
	case "AES256", "AES256CMAC", "AES-256", "AES-256-CMAC":
		return AES256CMAC, true
	// ntpd's "SHA" is not here: in the OpenSSL of its day it named SHA-0.
	case "SHA1", "SHA-1":
		return SHA1, true
	case "MD5", "M":
		return MD5, true
	case "SHA256", "SHA-256", "SHA2-256":
		return SHA256, true
	case "SHA384", "SHA-384", "SHA2-384":
		return SHA384, true
	case "SHA512", "SHA-512", "SHA2-512":
		return SHA512, true
	case "SHA224", "SHA-224", "SHA2-224":
		return SHA224, true
	case "SHA3-224", "SHA3_224":
		return SHA3_224, true
	case "SHA3-256", "SHA3_256":
		return SHA3_256, true
	case "SHA3-384", "SHA3_384":
		return SHA3_384, true
	case "SHA3-512", "SHA3_512":
		return SHA3_512, true
	}
	return 0, false
}

// unsupportedDigest names the digests chrony or ntpd may accept that timegate
// does not implement: none is in the Go standard library, and none is
// offered by chrony's Debian/Fedora builds (Nettle) either.
func unsupportedDigest(name string) bool {
	switch strings.ToUpper(name) {
	case "SHA", "TIGER", "WHIRLPOOL", "RIPEMD160", "RMD160", "SM3", "MD4", "MDC2", "BLAKE2B512", "BLAKE2S256":
		return true
	}
	return false
}
