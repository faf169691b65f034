package nts

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"io"
	"time"
)

// Key ring limits.
const (
	// DefaultKeep is how many sealing keys (current and older) a rotation
	// keeps: with daily rotation, cookies up to a week old still open, so a
	// client that slept for days needs no new NTS-KE (RFC 8915 §6).
	DefaultKeep = 7
	// MaxKeep bounds the ring, and so the file a ring is read from and the
	// keys tried per cookie.
	MaxKeep = 32

	masterKeyLen = 32 // AES-SIV-CMAC-256: two AES-128 keys (RFC 5297 §2.2)
	idAttempts   = 8  // random 32-bit ids that collide 8 times mean a broken rand
)

// KeyRing holds the server's cookie master keys. It is immutable, so the edge
// swaps whole rings through an atomic.Pointer and readers need no lock.
//
// The ring keeps one key ahead: the "next" key opens cookies but never seals.
// It is generated and persisted one rotation before it is used, so a gateway
// that shares the ring file and reloads late still opens the cookies of one
// that rotated early. Rotated promotes next to current and makes a fresh next.
type KeyRing struct {
	rotated time.Time
	keys    []masterKey // [0] next, [1] current (seals), [2:] older, newest first
	// seal is the index of the sealing key: 1 in a ring this package makes
	// (one next key ahead of it); a fleet ring (FromKeys) may hold no
	// pending key or several.
	seal int
}

type masterKey struct {
	id      uint32 // random, not a counter: gateways sharing a file agree on it
	created time.Time
	key     [masterKeyLen]byte
	aead    cookieAEAD
}

// NewKeyRing makes a ring with a fresh current key and a fresh next key.
func NewKeyRing(now time.Time, rand io.Reader) (*KeyRing, error) {
	r := &KeyRing{rotated: unixTime(now), seal: 1}
	for range 2 {
		k, err := r.newKey(now, rand)
		if err != nil {
			return nil, err
		}
		r.keys = append(r.keys, k)
	}
	return r, nil
}

// Rotated returns a new ring in which the next key seals, a fresh key is
// next, and at most keep sealing keys (current and older) remain; keep 0
// means DefaultKeep. The receiver is unchanged.
func (r *KeyRing) Rotated(now time.Time, rand io.Reader, keep int) (*KeyRing, error) {
	if keep == 0 {
		keep = DefaultKeep
	}
	if keep < 1 || keep > MaxKeep || r.seal != 1 {
		return nil, ErrKeyRing
	}
	k, err := r.newKey(now, rand) // unlike every id of r, kept or not
	if err != nil {
		return nil, err
	}
	n := min(len(r.keys), keep)
	nr := &KeyRing{rotated: unixTime(now), keys: make([]masterKey, 0, 1+n), seal: 1}
	nr.keys = append(nr.keys, k)
	nr.keys = append(nr.keys, r.keys[:n]...) // the old next becomes current
	return nr, nil
}

// newKey draws a key whose id no key of r already has.
func (r *KeyRing) newKey(now time.Time, rand io.Reader) (masterKey, error) {
	var buf [4 + masterKeyLen]byte
	for range idAttempts {
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return masterKey{}, err
		}
		id := binary.BigEndian.Uint32(buf[:])
		if r.find(id) != nil {
			continue
		}
		return makeKey(id, unixTime(now), buf[4:])
	}
	return masterKey{}, ErrKeyRing
}

func makeKey(id uint32, created time.Time, key []byte) (masterKey, error) {
	k := masterKey{id: id, created: created}
	copy(k.key[:], key)
	a, err := newCookieAEAD(k.key[:])
	if err != nil {
		return masterKey{}, err
	}
	k.aead = a
	return k, nil
}

func (r *KeyRing) current() *masterKey { return &r.keys[r.seal] }

// find returns the key with id, or nil. A linear scan: the ring holds at most
// MaxKeep+1 keys and usually 8, fewer than a map lookup costs.
func (r *KeyRing) find(id uint32) *masterKey {
	for i := range r.keys {
		if r.keys[i].id == id {
			return &r.keys[i]
		}
	}
	return nil
}

// RotatedAt is when the current key started sealing.
func (r *KeyRing) RotatedAt() time.Time { return r.rotated }

// CurrentID is the id of the key that seals new cookies.
func (r *KeyRing) CurrentID() uint32 { return r.keys[r.seal].id }

// NextID is the id of the key that will seal after the next rotation; 0 when
// a fleet ring has no pending key.
func (r *KeyRing) NextID() uint32 {
	if r.seal == 0 {
		return 0
	}
	return r.keys[r.seal-1].id
}

// Pending is how many keys wait to seal (next keys): one in a ring this
// package makes, any number up to MaxPending in a fleet ring.
func (r *KeyRing) Pending() int { return r.seal }

// IDs lists the ids of every key that opens cookies: next, current, older.
func (r *KeyRing) IDs() []uint32 {
	ids := make([]uint32, len(r.keys))
	for i := range r.keys {
		ids[i] = r.keys[i].id
	}
	return ids
}

// unixTime drops what the file format does not keep (sub-seconds, the
// monotonic reading, the zone), so a ring equals itself after a round trip.
func unixTime(t time.Time) time.Time { return time.Unix(t.Unix(), 0).UTC() }

// Ring file format, version 1. Integers are big-endian, times are Unix
// seconds (signed). Key 0 is next, key 1 current, then older keys, newest
// first. The SHA-256 trailer catches a torn or corrupted file, which would
// otherwise silently make every outstanding cookie fail.
//
//	+--------+---------+-------+----------+--------------+
//	| "TGKR" | version | count | reserved | rotated-at   |   16-byte header
//	| 4      | 1       | 1     | 2 (zero) | 8            |
//	+--------+---------+-------+----------+--------------+
//	| id 4   | created 8  | key 32   |   count times, 44 bytes each
//	+--------+------------+----------+
//	| SHA-256 of everything above, 32 |
//	+---------------------------------+
const (
	ringMagic     = "TGKR"
	ringVersion   = 1
	ringHeaderLen = 16
	ringEntryLen  = 4 + 8 + masterKeyLen
	ringSumLen    = sha256.Size
)

// MarshalBinary encodes the ring in the versioned file format above.
func (r *KeyRing) MarshalBinary() ([]byte, error) {
	if r.seal != 1 {
		return nil, ErrKeyRing // a fleet ring is kept in its own sealed form
	}
	return r.marshal(ringMagic, 0), nil
}

// The handover format carries any ring, a fleet's too, to an NTS-KE
// helper process (never to a file): the ring file's layout under its own
// magic, with the index of the sealing key in the first reserved octet.
const handoverMagic = "TGKH"

// MarshalHandover encodes the ring for UnmarshalHandover in a helper
// process of this same program.
func (r *KeyRing) MarshalHandover() []byte { return r.marshal(handoverMagic, byte(r.seal)) }

// UnmarshalHandover decodes what MarshalHandover encoded, with the checks
// of UnmarshalKeyRing and a sealing key inside the ring.
func UnmarshalHandover(data []byte) (*KeyRing, error) {
	if len(data) < ringHeaderLen || data[6] > MaxPending || int(data[6]) >= int(data[5]) {
		return nil, ErrKeyRing
	}
	return unmarshal(data, handoverMagic, int(data[6]), 1)
}

func (r *KeyRing) marshal(magic string, seal byte) []byte {
	b := make([]byte, ringHeaderLen, ringHeaderLen+len(r.keys)*ringEntryLen+ringSumLen)
	copy(b, magic)
	b[4], b[5], b[6] = ringVersion, byte(len(r.keys)), seal
	binary.BigEndian.PutUint64(b[8:], uint64(r.rotated.Unix()))
	for i := range r.keys {
		k := &r.keys[i]
		b = binary.BigEndian.AppendUint32(b, k.id)
		b = binary.BigEndian.AppendUint64(b, uint64(k.created.Unix()))
		b = append(b, k.key[:]...)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// UnmarshalKeyRing decodes a ring written by MarshalBinary. It checks
// everything it can: magic, version, key count, exact length, checksum,
// reserved bytes and unique key ids. Deciding whether the ring is due for
// rotation is the caller's business (it knows the schedule).
func UnmarshalKeyRing(data []byte) (*KeyRing, error) {
	if len(data) < ringHeaderLen || data[6] != 0 {
		return nil, ErrKeyRing
	}
	return unmarshal(data, ringMagic, 1, 2)
}

// unmarshal decodes a ring whose sealing key is keys[seal] and which holds
// at least minKeys keys.
func unmarshal(data []byte, magic string, seal, minKeys int) (*KeyRing, error) {
	if len(data) < ringHeaderLen+ringSumLen || string(data[:4]) != magic ||
		data[4] != ringVersion || data[7] != 0 {
		return nil, ErrKeyRing
	}
	count := int(data[5])
	if count < minKeys || count > seal+MaxKeep || len(data) != ringHeaderLen+count*ringEntryLen+ringSumLen {
		return nil, ErrKeyRing
	}
	body, sum := data[:len(data)-ringSumLen], data[len(data)-ringSumLen:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(want[:], sum) != 1 {
		return nil, ErrKeyRing
	}
	r := &KeyRing{rotated: time.Unix(int64(binary.BigEndian.Uint64(data[8:])), 0).UTC(), seal: seal}
	for e := body[ringHeaderLen:]; len(e) > 0; e = e[ringEntryLen:] {
		id := binary.BigEndian.Uint32(e)
		if r.find(id) != nil {
			return nil, ErrKeyRing
		}
		created := time.Unix(int64(binary.BigEndian.Uint64(e[4:])), 0).UTC()
		k, err := makeKey(id, created, e[12:ringEntryLen])
		if err != nil {
			return nil, err
		}
		r.keys = append(r.keys, k)
	}
	return r, nil
}

// KeyInfo describes one master key without its secret.
type KeyInfo struct {
	ID      uint32
	Created time.Time
}

// Keys lists the keys that open cookies, next first, then current, then older, newest
// first: what an operator is shown.
func (r *KeyRing) Keys() []KeyInfo {
	out := make([]KeyInfo, len(r.keys))
	for i := range r.keys {
		out[i] = KeyInfo{ID: r.keys[i].id, Created: r.keys[i].created}
	}
	return out
}

// Pruned returns a ring that keeps the next key, the current key and at most keep-1
// older keys; keep must be at least 1. Cookies sealed under a dropped key stop opening
// (their clients get an NTS NAK and redo NTS-KE): the operator's answer to a key that
// may have leaked. The receiver is unchanged; the rotation time is kept.
func (r *KeyRing) Pruned(keep int) (*KeyRing, error) {
	if keep < 1 || keep > MaxKeep || r.seal != 1 {
		return nil, ErrKeyRing
	}
	n := min(len(r.keys), 1+keep)
	return &KeyRing{rotated: r.rotated, keys: append([]masterKey(nil), r.keys[:n]...), seal: 1}, nil
}

// MaxPending bounds the keys of a fleet ring that wait to seal: a rotation
// is published every ntsrotate interval and waits one propagation delay, so
// a fleet has one pending key, two after a hasty manual rotation; more means
// a hostile or broken writer, whose keys must not crowd out sealing ones.
const MaxPending = 4

// Key is one master key as a fleet key store hands it over.
type Key struct {
	ID      uint32
	Created time.Time
	Secret  [masterKeyLen]byte
}

// KeyLenMaster is the length of a cookie master key.
const KeyLenMaster = masterKeyLen

// FromKeys builds a ring from keys decided elsewhere (a fleet's shared store):
// pending keys that open but do not seal yet, newest first, then the sealing
// key, then older keys, newest first. rotated is when the sealing key began
// to seal. IDs must be distinct and non-zero (0 means "none" in reports).
func FromKeys(rotated time.Time, pending []Key, sealing Key, older []Key) (*KeyRing, error) {
	if len(pending) > MaxPending || len(older)+1 > MaxKeep {
		return nil, ErrKeyRing
	}
	r := &KeyRing{rotated: unixTime(rotated), seal: len(pending), keys: make([]masterKey, 0, len(pending)+1+len(older))}
	all := append(append(append(make([]Key, 0, cap(r.keys)), pending...), sealing), older...)
	for _, k := range all {
		if k.ID == 0 || r.find(k.ID) != nil {
			return nil, ErrKeyRing
		}
		mk, err := makeKey(k.ID, unixTime(k.Created), k.Secret[:])
		if err != nil {
			return nil, err
		}
		r.keys = append(r.keys, mk)
	}
	return r, nil
}
