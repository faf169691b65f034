package nts

import (
	"encoding/binary"

	"timegate/siv"
)

// keyCacheSize is how many clients' expanded keys one scratch keeps. A
// client polls with the same C2S/S2C until its next NTS-KE, so a worker
// that answered it recently finds its AES schedules here instead of
// expanding them again: about 100 ns on siv's AES-NI path, and three
// allocations where siv falls back to crypto/aes (no AES-NI, other
// architectures, the purego tag), which cannot expand into memory of ours.
// 32 entries are about 43 kB per scratch (round keys inline; with crypto/aes
// about 55 kB counting its heap schedules), one scratch per CPU.
const keyCacheSize = 32

// A batch marks the slots it uses in a uint64 (lookupBatch).
var _ [64 - keyCacheSize]struct{}

// keyCache is a direct-mapped cache of expanded association keys, indexed
// by the first octets of C2S: exporter output, which no client can aim at
// a chosen slot (and a cookie forged to do so does not open). A miss
// evicts whoever held the slot; nothing grows.
//
// The cache keeps recent clients' session keys in memory after their
// request is answered. They are no more exposed than before: each one is
// in its client's cookies, which the key ring in the same memory opens.
type keyCache struct {
	entries [keyCacheSize]cachedKeys
}

type cachedKeys struct {
	used     bool
	raw      [2 * KeyLen]byte // C2S ‖ S2C as the cookie carried them
	c2s, s2c siv.Key
}

// lookup returns the expanded keys of c, expanding them into the slot on a
// miss: C2S without its CTR key (requests rarely carry encrypted fields),
// S2C whole (every reply encrypts cookies).
func (k *keyCache) lookup(c *Cookie) (*cachedKeys, error) {
	var busy uint64
	return k.lookupBatch(c, &busy, nil)
}

// lookupBatch is lookup for one request of a batch whose earlier requests
// still hold pointers into the cache: busy marks the slots they use. A hit
// anywhere is shared (the keys are read-only once expanded); a miss on a
// busy slot expands into spare instead of evicting keys still in use.
func (k *keyCache) lookupBatch(c *Cookie, busy *uint64, spare *cachedKeys) (*cachedKeys, error) {
	slot := binary.LittleEndian.Uint64(c.C2S[:8]) % keyCacheSize
	e := &k.entries[slot]
	var raw [2 * KeyLen]byte
	copy(raw[:KeyLen], c.C2S[:])
	copy(raw[KeyLen:], c.S2C[:])
	if e.used && sameKeys(&e.raw, &raw) {
		*busy |= 1 << slot
		return e, nil
	}
	if *busy&(1<<slot) != 0 {
		e = spare
	}
	*busy |= 1 << slot
	e.used = false
	if err := e.c2s.SetKey(c.C2S[:], false); err != nil {
		return nil, err
	}
	if err := e.s2c.SetKey(c.S2C[:], true); err != nil {
		return nil, err
	}
	e.raw, e.used = raw, true
	return e, nil
}

// sameKeys compares two key pairs in time independent of where they
// differ, a word at a time (subtle.ConstantTimeCompare goes a byte at a
// time and cost more than the rest of the lookup).
func sameKeys(a, b *[2 * KeyLen]byte) bool {
	var d uint64
	for i := 0; i < len(a); i += 8 {
		d |= binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:])
	}
	return d == 0
}
