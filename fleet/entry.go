// Package fleet decides which NTS cookie master keys a fleet of gateways
// uses, from the entries they share in a key-value store (etcd). It is pure:
// the store's events and the clock come in as arguments, a key ring and a
// plan (publish, prune) come out; the etcd client lives in internal/etcdring.
//
// Every master key is one entry, sealed under a wrapping key that each
// gateway reads from a local file and that never enters the store, so a
// reader of the store learns nothing and a writer without the wrapping key
// can delete or replay entries but never forge one (see State for how
// deletions and replays are contained).
package fleet

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"timegate/nts"
)

// Entry is one master key of the fleet, as sealed in the store.
type Entry struct {
	ID uint32
	// Created is when the key was published; Activate is when it starts
	// sealing cookies on every gateway (Created plus the propagation delay),
	// so that every gateway holds it before any seals with it.
	Created, Activate time.Time
	Secret            [nts.KeyLenMaster]byte
}

// WrapKeyLen is the length of the fleet wrapping key (AES-256-GCM).
const WrapKeyLen = 32

// Sealed entry format, version 1 (integers big-endian, times Unix seconds):
//
//	+--------+---------+----------+--------+-------+
//	| "TGFK" | version | reserved | key id | nonce |   24-byte header
//	| 4      | 1       | 3 (zero) | 4      | 12    |
//	+--------+---------+----------+--------+-------+
//	| AES-256-GCM(created 8 | activate 8 | secret 32) + tag 16 |   64
//	+------------------------------------------------------------+
//
// The associated data is the header's first 12 octets followed by the
// store prefix: an entry moved to another key id or another fleet's prefix
// (which may share the wrapping key) does not open.
const (
	entryMagic     = "TGFK"
	entryVersion   = 1
	entryHeaderLen = 24
	entryPlainLen  = 8 + 8 + nts.KeyLenMaster
	entryTagLen    = 16
	// EntryLen is the exact length of a sealed entry; anything else is
	// refused before any cryptography runs.
	EntryLen = entryHeaderLen + entryPlainLen + entryTagLen
)

// Errors. A refused entry is never fatal: it is ignored and reported.
var (
	ErrMalformed = errors.New("fleet: malformed entry")             // wrong length, magic, version, name
	ErrSeal      = errors.New("fleet: entry does not authenticate") // tampered, foreign prefix or wrong wrapping key
	ErrStale     = errors.New("fleet: entry older than the keys in service (replayed?)")
	ErrFull      = errors.New("fleet: too many entries")
	ErrEarlyDrop = errors.New("fleet: live key deleted before its grace period ended; kept")
)

// Sealer seals and opens entries under one fleet's wrapping key and prefix.
type Sealer struct {
	prefix string
	aead   cipher.AEAD
}

// NewSealer returns a Sealer for the store prefix (e.g. "/timegate/fleet1").
func NewSealer(wrapKey []byte, prefix string) (*Sealer, error) {
	if len(wrapKey) != WrapKeyLen {
		return nil, fmt.Errorf("fleet: wrapping key must be %d bytes, got %d", WrapKeyLen, len(wrapKey))
	}
	b, err := aes.NewCipher(wrapKey)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &Sealer{prefix: strings.TrimSuffix(prefix, "/"), aead: a}, nil
}

// Prefix is the store prefix entries live under, without a trailing slash.
func (s *Sealer) Prefix() string { return s.prefix }

// KeysPrefix is where entries live: PREFIX/keys/.
func (s *Sealer) KeysPrefix() string { return s.prefix + "/keys/" }

// LatestName is the store key whose revision serialises publications: a
// publication succeeds only if it has not changed since the publisher last
// read it, so gateways that find a rotation due at once publish one key.
func (s *Sealer) LatestName() string { return s.prefix + "/latest" }

// Name is the store key of the entry for id: PREFIX/keys/ and eight hex digits.
func (s *Sealer) Name(id uint32) string { return fmt.Sprintf("%s%08x", s.KeysPrefix(), id) }

// IDOf parses the key id from a store key; ok is false for any other key.
func (s *Sealer) IDOf(name string) (uint32, bool) {
	hex, ok := strings.CutPrefix(name, s.KeysPrefix())
	if !ok || len(hex) != 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil || v == 0 || fmt.Sprintf("%08x", v) != hex {
		return 0, false
	}
	return uint32(v), true
}

// Seal encodes e in the sealed format with a fresh nonce from rand.
func (s *Sealer) Seal(e Entry, rand io.Reader) ([]byte, error) {
	out := make([]byte, entryHeaderLen, EntryLen)
	copy(out, entryMagic)
	out[4] = entryVersion
	binary.BigEndian.PutUint32(out[8:], e.ID)
	if _, err := io.ReadFull(rand, out[12:entryHeaderLen]); err != nil {
		return nil, err
	}
	var pt [entryPlainLen]byte
	binary.BigEndian.PutUint64(pt[0:], uint64(e.Created.Unix()))
	binary.BigEndian.PutUint64(pt[8:], uint64(e.Activate.Unix()))
	copy(pt[16:], e.Secret[:])
	out = s.aead.Seal(out, out[12:entryHeaderLen], pt[:], s.ad(out[:12]))
	clear(pt[:])
	return out, nil
}

// Open authenticates and decodes the entry stored under name. Hostile input
// gives ErrMalformed or ErrSeal, never a panic; nothing it returns aliases data.
func (s *Sealer) Open(name string, data []byte) (Entry, error) {
	id, ok := s.IDOf(name)
	if !ok || len(data) != EntryLen || string(data[:4]) != entryMagic || data[4] != entryVersion ||
		data[5]|data[6]|data[7] != 0 || binary.BigEndian.Uint32(data[8:]) != id {
		return Entry{}, ErrMalformed
	}
	var buf [entryPlainLen]byte
	pt, err := s.aead.Open(buf[:0], data[12:entryHeaderLen], data[entryHeaderLen:], s.ad(data[:12]))
	if err != nil {
		return Entry{}, ErrSeal
	}
	e := Entry{ID: id,
		Created:  time.Unix(int64(binary.BigEndian.Uint64(pt[0:])), 0).UTC(),
		Activate: time.Unix(int64(binary.BigEndian.Uint64(pt[8:])), 0).UTC()}
	copy(e.Secret[:], pt[16:])
	clear(buf[:])
	return e, nil
}

func (s *Sealer) ad(head []byte) []byte {
	return append(append(make([]byte, 0, len(head)+len(s.prefix)), head...), s.prefix...)
}
