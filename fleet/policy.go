package fleet

import (
	"encoding/binary"
	"io"
	"time"
)

// MaxPolicyLen bounds a fleet policy's text: one etcd value, parsed by
// every gateway.
const MaxPolicyLen = 64 << 10

// Sealed policy format, version 1: the access policy and rate limits the
// fleet shares (text in the configuration's syntax), sealed like the key
// entries so that only holders of the wrapping key can set a fleet's policy.
//
//	+--------+---------+----------+-----------+-------+
//	| "TGFP" | version | reserved | published | nonce |   28-byte header
//	| 4      | 1       | 3 (zero) | 8         | 12    |
//	+--------+---------+----------+-----------+-------+
//	| AES-256-GCM(policy text) + tag 16                |
//	+--------------------------------------------------+
//
// The associated data is the header's first 16 octets and the store key
// (PREFIX/policy): the publication time cannot be changed, and a policy
// cannot be moved to another fleet.
const (
	policyMagic     = "TGFP"
	policyVersion   = 1
	policyHeaderLen = 28
)

// PolicyName is the store key of the fleet's policy.
func (s *Sealer) PolicyName() string { return s.prefix + "/policy" }

// SealPolicy seals text, published at the given time.
func (s *Sealer) SealPolicy(text []byte, published time.Time, rand io.Reader) ([]byte, error) {
	if len(text) > MaxPolicyLen {
		return nil, ErrMalformed
	}
	out := make([]byte, policyHeaderLen, policyHeaderLen+len(text)+entryTagLen)
	copy(out, policyMagic)
	out[4] = policyVersion
	binary.BigEndian.PutUint64(out[8:], uint64(published.UnixNano()))
	if _, err := io.ReadFull(rand, out[16:policyHeaderLen]); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out[16:policyHeaderLen], text, s.policyAD(out[:16])), nil
}

// OpenPolicy authenticates a sealed policy and returns its text and
// publication time. Hostile input gives ErrMalformed or ErrSeal.
func (s *Sealer) OpenPolicy(data []byte) ([]byte, time.Time, error) {
	if len(data) < policyHeaderLen+entryTagLen || len(data) > policyHeaderLen+MaxPolicyLen+entryTagLen ||
		string(data[:4]) != policyMagic || data[4] != policyVersion || data[5]|data[6]|data[7] != 0 {
		return nil, time.Time{}, ErrMalformed
	}
	text, err := s.aead.Open(nil, data[16:policyHeaderLen], data[policyHeaderLen:], s.policyAD(data[:16]))
	if err != nil {
		return nil, time.Time{}, ErrSeal
	}
	return text, time.Unix(0, int64(binary.BigEndian.Uint64(data[8:]))).UTC(), nil
}

func (s *Sealer) policyAD(head []byte) []byte {
	name := s.PolicyName()
	return append(append(make([]byte, 0, len(head)+len(name)), head...), name...)
}
