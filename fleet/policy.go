package fleet

import (
	"encoding/binary"
	"io"
	"time"
)

// MaxPolicyLen bounds a fleet policy's text: one etcd value, parsed by
// every gateway.
const MaxPolicyLen = 64 << 10

// Sealed notice format, version 1: what the fleet shares besides its keys
// (the policy, the revocation cutoff), sealed like the key entries so that
// only holders of the wrapping key can set it.
//
//	+-------+---------+----------+-----------+-------+
//	| magic | version | reserved | published | nonce |   28-byte header
//	| 4     | 1       | 3 (zero) | 8         | 12    |
//	+-------+---------+----------+-----------+-------+
//	| AES-256-GCM(body) + tag 16                     |
//	+------------------------------------------------+
//
// The associated data is the header's first 16 octets and the store key:
// the publication time cannot be changed, and a notice cannot be moved to
// another fleet or read as another kind (the magic differs too).
const (
	policyMagic     = "TGFP"
	cutoffMagic     = "TGFC"
	noticeVersion   = 1
	noticeHeaderLen = 28
)

// PolicyName is the store key of the fleet's policy.
func (s *Sealer) PolicyName() string { return s.prefix + "/policy" }

// SealPolicy seals text, published at the given time.
func (s *Sealer) SealPolicy(text []byte, published time.Time, rand io.Reader) ([]byte, error) {
	if len(text) > MaxPolicyLen {
		return nil, ErrMalformed
	}
	return s.sealNotice(policyMagic, s.PolicyName(), text, published, rand)
}

// OpenPolicy authenticates a sealed policy and returns its text and
// publication time. Hostile input gives ErrMalformed or ErrSeal.
func (s *Sealer) OpenPolicy(data []byte) ([]byte, time.Time, error) {
	return s.openNotice(policyMagic, s.PolicyName(), data, 0, MaxPolicyLen)
}

func (s *Sealer) sealNotice(magic, name string, body []byte, published time.Time, rand io.Reader) ([]byte, error) {
	out := make([]byte, noticeHeaderLen, noticeHeaderLen+len(body)+entryTagLen)
	copy(out, magic)
	out[4] = noticeVersion
	binary.BigEndian.PutUint64(out[8:], uint64(published.UnixNano()))
	if _, err := io.ReadFull(rand, out[16:noticeHeaderLen]); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out[16:noticeHeaderLen], body, noticeAD(out[:16], name)), nil
}

// openNotice authenticates a notice whose body is minBody..maxBody bytes.
func (s *Sealer) openNotice(magic, name string, data []byte, minBody, maxBody int) ([]byte, time.Time, error) {
	if len(data) < noticeHeaderLen+minBody+entryTagLen || len(data) > noticeHeaderLen+maxBody+entryTagLen ||
		string(data[:4]) != magic || data[4] != noticeVersion || data[5]|data[6]|data[7] != 0 {
		return nil, time.Time{}, ErrMalformed
	}
	body, err := s.aead.Open(nil, data[16:noticeHeaderLen], data[noticeHeaderLen:], noticeAD(data[:16], name))
	if err != nil {
		return nil, time.Time{}, ErrSeal
	}
	return body, time.Unix(0, int64(binary.BigEndian.Uint64(data[8:]))).UTC(), nil
}

func noticeAD(head []byte, name string) []byte {
	return append(append(make([]byte, 0, len(head)+len(name)), head...), name...)
}
