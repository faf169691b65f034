package fleet

import (
	"encoding/binary"
	"io"
	"time"
)

// A revocation (`gatectl keys nts prune --fleet`, after a suspected key
// leak) must end superseded keys before their grace period, on every
// gateway. Deleting their entries alone would not do it: a State keeps a
// live key whose entry disappears (ErrEarlyDrop), because a store writer
// without the wrapping key must not be able to roll keys away. So the
// prune publishes a sealed cutoff, an activation time: every key that
// began sealing before it, other than the key sealing now, is expired at
// once on every gateway that reads it, and its deletion is then accepted.
// Cutoffs only ever move forward: a replayed older one changes nothing.

// CutoffName is the store key of the fleet's revocation cutoff.
func (s *Sealer) CutoffName() string { return s.prefix + "/cutoff" }

// SealCutoff seals a cutoff: keys activated before before are revoked.
func (s *Sealer) SealCutoff(before, published time.Time, rand io.Reader) ([]byte, error) {
	var body [8]byte
	binary.BigEndian.PutUint64(body[:], uint64(before.Unix()))
	return s.sealNotice(cutoffMagic, s.CutoffName(), body[:], published, rand)
}

// OpenCutoff authenticates a sealed cutoff and returns it and when it was
// published. Hostile input gives ErrMalformed or ErrSeal.
func (s *Sealer) OpenCutoff(data []byte) (before, published time.Time, err error) {
	body, published, err := s.openNotice(cutoffMagic, s.CutoffName(), data, 8, 8)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return time.Unix(int64(binary.BigEndian.Uint64(body)), 0).UTC(), published, nil
}

// Cut applies a cutoff; it reports whether the cutoff moved (an older one
// than in force changes nothing).
func (s *State) Cut(before time.Time) bool {
	if !before.After(s.cutoff) {
		return false
	}
	s.cutoff = before
	return true
}

// Cutoff is the revocation cutoff in force; zero when there is none.
func (s *State) Cutoff() time.Time { return s.cutoff }

// PlanCutoff returns the cutoff that keeps the keep newest active keys
// (the sealing key and keep-1 others) and pending ones, and the keys it
// revokes; ok is false when there is nothing to revoke. keep is at least 1:
// the sealing key is never revoked (a gateway without one issues no
// cookies); to end it, rotate first and prune once the new key seals.
func (s *State) PlanCutoff(now time.Time, keep int) (before time.Time, revoked []uint32, ok bool) {
	keep = max(keep, 1)
	_, active := s.split(now)
	if len(active) <= keep {
		return time.Time{}, nil, false
	}
	for _, e := range active[keep:] {
		revoked = append(revoked, e.ID)
	}
	return active[keep-1].Activate, revoked, true
}
