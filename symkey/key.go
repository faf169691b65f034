package symkey

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"

	"timegate/siv"
)

var (
	// ErrKeyID is returned (wrapped) for key ID 0 or one out of range.
	ErrKeyID = errors.New("symkey: invalid key ID")
	// ErrType is returned (wrapped) for a type timegate does not support.
	ErrType = errors.New("symkey: unsupported key type")
	// ErrKeyLength is returned (wrapped) for a key of the wrong length.
	ErrKeyLength = errors.New("symkey: invalid key length")
)

// MaxSecretLen is the longest secret accepted: the longest whose canonical
// "4294967295 AES256 HEX:..." line still fits chrony's keys-file line buffer,
// so every key timegate holds can be written out and read back by chrony.
const MaxSecretLen = (maxLineLen - len("4294967295 AES256 HEX:")) / 2

// maxMACSize is the longest digest any Type produces (SHA-512, SHA3-512),
// sizing the stack buffer Sum and Verify compute into.
const maxMACSize = 64

// Key is one symmetric key. It is immutable and safe for concurrent use.
// Its secret is unexported and never printed.
type Key struct {
	id     uint32
	typ    Type
	secret []byte
	cmac   *siv.CMAC // AES types only
}

// NewKey checks and builds a key: ID 0 is invalid (RFC 5905 §7.3 reserves it
// for "no key"), AES-CMAC keys must be exactly 16 or 32 bytes as in chrony,
// hash keys must be 1..MaxSecretLen bytes. The secret is copied.
func NewKey(id uint32, t Type, secret []byte) (*Key, error) {
	if id == 0 {
		return nil, fmt.Errorf("%w: 0 means no key (RFC 5905 §7.3)", ErrKeyID)
	}
	if !t.valid() {
		return nil, fmt.Errorf("%w: %d", ErrType, t)
	}
	if n := t.KeySize(); n != 0 && len(secret) != n {
		return nil, fmt.Errorf("%w: %v key must be %d bytes, got %d", ErrKeyLength, t, n, len(secret))
	}
	if len(secret) == 0 || len(secret) > MaxSecretLen {
		return nil, fmt.Errorf("%w: %v key must be 1..%d bytes, got %d", ErrKeyLength, t, MaxSecretLen, len(secret))
	}
	k := &Key{id: id, typ: t, secret: append([]byte(nil), secret...)}
	if t.KeySize() != 0 {
		c, err := siv.NewCMAC(k.secret)
		if err != nil {
			return nil, err
		}
		k.cmac = c
	}
	return k, nil
}

// ID returns the key ID carried in the MAC.
func (k *Key) ID() uint32 { return k.id }

// Type returns the MAC algorithm.
func (k *Key) Type() Type { return k.typ }

// Size returns the whole digest length, without the 4-byte key ID.
func (k *Key) Size() int { return k.typ.MACSize() }

// MACLen is the digest length carried in a packet of NTP version vn (see
// Type.MACLen): digests longer than 20 octets are truncated in NTPv4.
func (k *Key) MACLen(vn uint8) int { return k.typ.MACLen(vn) }

// Legacy reports whether the key uses MD5 or SHA-1.
func (k *Key) Legacy() bool { return k.typ.Legacy() }

// String names the key without its secret.
func (k *Key) String() string { return fmt.Sprintf("key %d (%v)", k.id, k.typ) }

// GoString keeps %#v from printing the secret.
func (k *Key) GoString() string { return fmt.Sprintf("symkey.Key{ID: %d, Type: %v}", k.id, k.typ) }

// Sum appends the whole MAC digest of msg to dst: AES-CMAC(key, msg) for the
// AES types (RFC 8573 §4), H(key ‖ msg) for the hash types as ntpd and chrony
// compute them (RFC 5905 §7.3). It allocates nothing when dst has room.
func (k *Key) Sum(dst, msg []byte) []byte { return k.SumTrunc(dst, msg, k.Size()) }

// SumTrunc appends the first n octets of the digest of msg to dst (n is
// clamped to 0..Size), the truncation NTPv4 applies to long digests.
func (k *Key) SumTrunc(dst, msg []byte, n int) []byte {
	n = max(0, min(n, k.Size()))
	if k.cmac != nil {
		// AES-CMAC tags (16 octets) fit every version and are never
		// truncated; a shorter n is honoured all the same.
		return k.cmac.Sum(dst, msg)[:len(dst)+n]
	}
	var buf [maxMACSize]byte
	return append(dst, k.digest(buf[:0], msg)[:n]...)
}

// digest computes the hash types' digest into buf (the AES types go
// through k.cmac, whose Sum keeps its own buffers). Each hash is created by its concrete
// constructor in its own small function so that the compiler sees the
// concrete type and keeps the state, and the caller's buffer, on the stack
// (a shared hash.Hash variable makes both escape: an allocation per packet).
func (k *Key) digest(buf, msg []byte) []byte {
	switch k.typ {
	case SHA1:
		return sumSHA1(buf, k.secret, msg)
	case SHA224:
		return sumSHA224(buf, k.secret, msg)
	case SHA256:
		return sumSHA256(buf, k.secret, msg)
	case SHA384:
		return sumSHA384(buf, k.secret, msg)
	case SHA512:
		return sumSHA512(buf, k.secret, msg)
	case SHA3_224:
		return sumSHA3(sha3.New224(), buf, k.secret, msg)
	case SHA3_256:
		return sumSHA3(sha3.New256(), buf, k.secret, msg)
	case SHA3_384:
		return sumSHA3(sha3.New384(), buf, k.secret, msg)
	case SHA3_512:
		return sumSHA3(sha3.New512(), buf, k.secret, msg)
	}
	return sumMD5(buf, k.secret, msg)
}

func sumMD5(buf, key, msg []byte) []byte {
	h := md5.New()
	h.Write(key)
	h.Write(msg)
	return h.Sum(buf)
}

func sumSHA1(buf, key, msg []byte) []byte {
	h := sha1.New()
	h.Write(key)
	h.Write(msg)
	return h.Sum(buf)
}

func sumSHA224(buf, key, msg []byte) []byte {
	h := sha256.New224()
	h.Write(key)
	h.Write(msg)
	return h.Sum(buf)
}

func sumSHA256(buf, key, msg []byte) []byte {
	h := sha256.New()
	h.Write(key)
	h.Write(msg)
	return h.Sum(buf)
}

func sumSHA384(buf, key, msg []byte) []byte {
	h := sha512.New384()
	h.Write(key)
	h.Write(msg)
	return h.Sum(buf)
}

func sumSHA512(buf, key, msg []byte) []byte {
	h := sha512.New()
	h.Write(key)
	h.Write(msg)
	return h.Sum(buf)
}

func sumSHA3(h *sha3.SHA3, buf, key, msg []byte) []byte {
	h.Write(key)
	h.Write(msg)
	return h.Sum(buf)
}

// Verify reports whether mac is the digest of msg, comparing in constant
// time. mac must be the whole digest or, for digests longer than 20 octets,
// its NTPv4 truncation to 20 (chrony's check_auth accepts exactly these);
// any other length is rejected: accepting shorter truncations would make
// forgery easier. Which of the two a packet must carry is the caller's
// decision (MACLen of the packet's version).
func (k *Key) Verify(msg, mac []byte) bool {
	size := k.Size()
	if len(mac) != size && (size <= V4MaxDigest || len(mac) != V4MaxDigest) {
		return false
	}
	if k.cmac != nil {
		return k.cmac.Verify(msg, mac)
	}
	var buf [maxMACSize]byte
	return subtle.ConstantTimeCompare(k.digest(buf[:0], msg)[:len(mac)], mac) == 1
}

// Equal reports whether k and o are the same key: ID, type and secret (compared in
// constant time). A reload uses it to tell an unchanged key from a replaced one.
func (k *Key) Equal(o *Key) bool {
	if k == nil || o == nil {
		return k == o
	}
	return k.id == o.id && k.typ == o.typ && subtle.ConstantTimeCompare(k.secret, o.secret) == 1
}
