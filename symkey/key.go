package symkey

import (
	"crypto/md5"
	"crypto/sha1"
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

// maxMACSize is the longest digest any Type produces (SHA-1), sizing the
// stack buffer Verify computes into.
const maxMACSize = 20

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

// Size returns the digest length, without the 4-byte key ID.
func (k *Key) Size() int { return k.typ.MACSize() }

// Legacy reports whether the key uses MD5 or SHA-1.
func (k *Key) Legacy() bool { return k.typ.Legacy() }

// String names the key without its secret.
func (k *Key) String() string { return fmt.Sprintf("key %d (%v)", k.id, k.typ) }

// GoString keeps %#v from printing the secret.
func (k *Key) GoString() string { return fmt.Sprintf("symkey.Key{ID: %d, Type: %v}", k.id, k.typ) }

// Sum appends the MAC digest of msg to dst: AES-CMAC(key, msg) for the AES
// types (RFC 8573 §4), H(key ‖ msg) for MD5 and SHA-1 as ntpd and chrony
// compute them (RFC 5905 §7.3). It allocates nothing when dst has room.
func (k *Key) Sum(dst, msg []byte) []byte {
	if k.cmac != nil {
		return k.cmac.Sum(dst, msg)
	}
	return k.hashSum(dst, msg)
}

// hashSum is kept apart from the CMAC path so that the compiler sees the
// concrete hash types and keeps their state, and Verify's buffer, on the
// stack.
func (k *Key) hashSum(dst, msg []byte) []byte {
	if k.typ == SHA1 {
		h := sha1.New()
		h.Write(k.secret)
		h.Write(msg)
		return h.Sum(dst)
	}
	h := md5.New()
	h.Write(k.secret)
	h.Write(msg)
	return h.Sum(dst)
}

// Verify reports whether mac is the digest of msg, comparing in constant
// time. A MAC of any other length than Size is rejected: accepting truncated
// digests would make forgery easier.
func (k *Key) Verify(msg, mac []byte) bool {
	if len(mac) != k.Size() {
		return false
	}
	if k.cmac != nil {
		return k.cmac.Verify(msg, mac)
	}
	var buf [maxMACSize]byte
	return subtle.ConstantTimeCompare(k.hashSum(buf[:0], msg), mac) == 1
}

// Equal reports whether k and o are the same key: ID, type and secret (compared in
// constant time). A reload uses it to tell an unchanged key from a replaced one.
func (k *Key) Equal(o *Key) bool {
	if k == nil || o == nil {
		return k == o
	}
	return k.id == o.id && k.typ == o.typ && subtle.ConstantTimeCompare(k.secret, o.secret) == 1
}
