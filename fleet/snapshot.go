package fleet

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
)

// Local copy format, version 1: the last good set of entries, still sealed
// as in the store, so a gateway restarted while the store is unreachable
// serves with the keys the others have. The SHA-256 trailer catches a torn
// file; the entries authenticate themselves when a State takes them.
//
//	+--------+---------+----------+-------+
//	| "TGFS" | version | reserved | count |   8-byte header
//	| 4      | 1       | 1 (zero) | 2     |
//	+--------+---------+----------+-------+
//	| key id 4 | sealed entry EntryLen |    count times
//	+----------+-----------------------+
//	| SHA-256 of everything above, 32  |
//	+----------------------------------+
const (
	snapMagic     = "TGFS"
	snapVersion   = 1
	snapHeaderLen = 8
	snapEntryLen  = 4 + EntryLen
)

// MarshalSnapshot encodes entries (as State.Entries returns them) for the
// local copy. Entries whose name is not a key of s are left out.
func (s *Sealer) MarshalSnapshot(kvs []KV) []byte {
	b := make([]byte, snapHeaderLen, snapHeaderLen+len(kvs)*snapEntryLen+sha256.Size)
	copy(b, snapMagic)
	b[4] = snapVersion
	n := 0
	for _, kv := range kvs {
		id, ok := s.IDOf(kv.Name)
		if !ok || len(kv.Value) != EntryLen || n == MaxEntries {
			continue
		}
		b = binary.BigEndian.AppendUint32(b, id)
		b = append(b, kv.Value...)
		n++
	}
	binary.BigEndian.PutUint16(b[6:], uint16(n))
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// UnmarshalSnapshot decodes a local copy into store entries, to be fed to
// State.Reset. It checks framing only (magic, version, count, exact length,
// checksum); each entry is authenticated when a State opens it.
func (s *Sealer) UnmarshalSnapshot(data []byte) ([]KV, error) {
	if len(data) < snapHeaderLen+sha256.Size || string(data[:4]) != snapMagic || data[4] != snapVersion || data[5] != 0 {
		return nil, ErrMalformed
	}
	n := int(binary.BigEndian.Uint16(data[6:]))
	if n > MaxEntries || len(data) != snapHeaderLen+n*snapEntryLen+sha256.Size {
		return nil, ErrMalformed
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(want[:], sum) != 1 {
		return nil, ErrMalformed
	}
	out := make([]KV, 0, n)
	for e := body[snapHeaderLen:]; len(e) > 0; e = e[snapEntryLen:] {
		id := binary.BigEndian.Uint32(e)
		out = append(out, KV{Name: s.Name(id), Value: append([]byte(nil), e[4:snapEntryLen]...)})
	}
	return out, nil
}
