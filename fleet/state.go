package fleet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"time"

	"timegate/nts"
)

// MaxEntries bounds the entries a State holds, whatever the store holds: a
// hostile or runaway writer cannot grow a gateway's memory or the keys tried
// per cookie.
const MaxEntries = nts.MaxPending + nts.MaxKeep

// ErrNoKey: no entry seals yet (an empty store, or only pending keys).
var ErrNoKey = errors.New("fleet: no key is active yet")

// ErrChanged: an entry was rewritten with other contents under the same id;
// keys are immutable once published, so the first version is kept.
var ErrChanged = errors.New("fleet: entry changed after publication; first version kept")

// Config is a fleet's schedule.
type Config struct {
	Sealer *Sealer
	// Interval is how often a rotation is due (ntsrotate); 0 means only by hand.
	Interval time.Duration
	// Delay is the propagation delay: a published key seals this long after
	// its publication, when every connected gateway has loaded it.
	Delay time.Duration
	// Grace is how long a key keeps opening cookies after its successor
	// starts sealing; then it is pruned.
	Grace time.Duration
}

// State is one gateway's view of the fleet's entries. It is fed with the
// store's events (Put, Delete, Reset after a reconnection) and the time, and
// answers with the ring to serve (Ring) and what the store needs (Due,
// Prune). It is not safe for concurrent use; the edge owns it.
//
// Two rules contain a store writer who lacks the wrapping key: an unknown
// entry that would activate before the newest key already in service is
// refused (ErrStale: a replayed old entry cannot become the sealing key
// again), and a live key deleted before its grace period is kept
// (ErrEarlyDrop: deleting the newest keys cannot roll sealing back either).
type State struct {
	cfg     Config
	entries map[uint32]held
	cutoff  time.Time // keys activated before it are revoked (see Cut)
}

type held struct {
	e   Entry
	raw []byte // as sealed in the store, for the local copy
}

// New returns an empty State.
func New(cfg Config) *State { return &State{cfg: cfg, entries: map[uint32]held{}} }

// Config is the schedule the State was made with.
func (s *State) Config() Config { return s.cfg }

// Put applies a store write. A refused entry changes nothing and returns why.
func (s *State) Put(name string, value []byte, now time.Time) error {
	e, err := s.cfg.Sealer.Open(name, value)
	if err != nil {
		return err
	}
	if h, ok := s.entries[e.ID]; ok {
		if h.e != e {
			return ErrChanged
		}
		return nil
	}
	if hw, ok := s.highWater(now); ok && e.Activate.Before(hw) {
		return ErrStale
	}
	if len(s.entries) >= MaxEntries {
		return ErrFull
	}
	if e.Activate.After(now) && s.pending(now) >= nts.MaxPending {
		return ErrFull
	}
	s.entries[e.ID] = held{e: e, raw: bytes.Clone(value)}
	return nil
}

// Delete applies a store deletion of name. Deleting an expired key, or one
// never seen, is fine; a key still in its lifetime is kept (ErrEarlyDrop).
func (s *State) Delete(name string, now time.Time) error {
	id, ok := s.cfg.Sealer.IDOf(name)
	if !ok {
		return nil
	}
	if _, ok := s.entries[id]; !ok {
		return nil
	}
	if !slices.Contains(s.expired(now), id) {
		return ErrEarlyDrop
	}
	delete(s.entries, id)
	return nil
}

// KV is one store entry: its key and value.
type KV struct {
	Name  string
	Value []byte
}

// Refusal is an entry a State would not take, and why.
type Refusal struct {
	Name string
	Err  error
}

// Reset applies a full read of the store (at start, and after a lost watch):
// every entry is Put, and every held entry the read lacks is Deleted.
func (s *State) Reset(kvs []KV, now time.Time) []Refusal {
	var out []Refusal
	// Oldest activation first, so that a replay check meets the genuine
	// newer entries after the older ones, as they were published.
	type opened struct {
		kv KV
		at time.Time
	}
	seen := map[uint32]bool{}
	var ok []opened
	for _, kv := range kvs {
		if id, isKey := s.cfg.Sealer.IDOf(kv.Name); isKey {
			seen[id] = true
		}
		e, err := s.cfg.Sealer.Open(kv.Name, kv.Value)
		if err != nil {
			out = append(out, Refusal{kv.Name, err})
			continue
		}
		ok = append(ok, opened{kv, e.Activate})
	}
	slices.SortFunc(ok, func(a, b opened) int { return a.at.Compare(b.at) })
	for _, o := range ok {
		if err := s.Put(o.kv.Name, o.kv.Value, now); err != nil {
			out = append(out, Refusal{o.kv.Name, err})
		}
	}
	for id := range s.entries {
		if !seen[id] {
			if err := s.Delete(s.cfg.Sealer.Name(id), now); err != nil {
				out = append(out, Refusal{s.cfg.Sealer.Name(id), err})
			}
		}
	}
	return out
}

// sorted returns the held entries, newest activation first (ties by id, so
// every gateway orders them alike).
func (s *State) sorted() []Entry {
	out := make([]Entry, 0, len(s.entries))
	for _, h := range s.entries {
		out = append(out, h.e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := b.Activate.Compare(a.Activate); c != 0 {
			return c
		}
		return cmpID(b.ID, a.ID)
	})
	return out
}

func cmpID(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// split sorts the live entries into pending (not sealing yet) and active
// (the sealing key first, then older ones), leaving out expired ones.
func (s *State) split(now time.Time) (pending, active []Entry) {
	for _, e := range s.sorted() {
		if e.Activate.After(now) {
			pending = append(pending, e)
			continue
		}
		if n := len(active); n > 0 {
			// Superseded when the next newer one began to seal; revoked
			// by a cutoff at once (never the key sealing now).
			if n >= nts.MaxKeep || !active[n-1].Activate.Add(s.cfg.Grace).After(now) || e.Activate.Before(s.cutoff) {
				break
			}
		}
		active = append(active, e)
	}
	return pending, active
}

func (s *State) expired(now time.Time) []uint32 {
	pending, active := s.split(now)
	live := map[uint32]bool{}
	for _, e := range append(pending, active...) {
		live[e.ID] = true
	}
	var out []uint32
	for id := range s.entries {
		if !live[id] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// highWater is the activation of the key sealing now, if any.
func (s *State) highWater(now time.Time) (time.Time, bool) {
	_, active := s.split(now)
	if len(active) == 0 {
		return time.Time{}, false
	}
	return active[0].Activate, true
}

func (s *State) pending(now time.Time) int {
	p, _ := s.split(now)
	return len(p)
}

// Ring is the key ring to serve at now: pending keys open, the newest
// active key seals, older ones open until their grace period ends.
func (s *State) Ring(now time.Time) (*nts.KeyRing, error) {
	pending, active := s.split(now)
	if len(active) == 0 {
		return nil, ErrNoKey
	}
	return nts.FromKeys(active[0].Activate, keys(pending), key(active[0]), keys(active[1:]))
}

func key(e Entry) nts.Key { return nts.Key{ID: e.ID, Created: e.Created, Secret: e.Secret} }

func keys(es []Entry) []nts.Key {
	out := make([]nts.Key, len(es))
	for i, e := range es {
		out[i] = key(e)
	}
	return out
}

// Prune forgets expired keys and returns their store names, for the edge
// to delete (any gateway may: a deletion of an expired key is idempotent).
func (s *State) Prune(now time.Time) []string {
	var names []string
	for _, id := range s.expired(now) {
		delete(s.entries, id)
		names = append(names, s.cfg.Sealer.Name(id))
	}
	return names
}

// Due reports whether a scheduled rotation should be published at now: no
// key is pending, and the sealing key will have served Interval once a key
// published now has propagated. Never with Interval 0.
func (s *State) Due(now time.Time) bool {
	if s.cfg.Interval <= 0 {
		return false
	}
	pending, active := s.split(now)
	if len(pending) > 0 {
		return false
	}
	return len(active) == 0 || !active[0].Activate.Add(s.cfg.Interval).After(now.Add(s.cfg.Delay))
}

// Empty reports whether no entry is held: the fleet needs its first key.
func (s *State) Empty() bool { return len(s.entries) == 0 }

// NextEvent is the next time Ring, Due or Prune answer differently without
// a store event: a pending key activating, a key expiring, a rotation due.
func (s *State) NextEvent(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	pending, active := s.split(now)
	for _, e := range pending {
		consider(e.Activate)
	}
	for i := 1; i < len(active); i++ {
		consider(active[i-1].Activate.Add(s.cfg.Grace))
	}
	if s.cfg.Interval > 0 && len(active) > 0 {
		consider(active[0].Activate.Add(s.cfg.Interval - s.cfg.Delay))
	}
	return next
}

// NewEntry makes the entry for a rotation published at now: a fresh key
// whose id no held entry has, sealing after the propagation delay, or at
// once when first is set (the first key of an empty fleet, which no cookie
// can predate). The store must still refuse an id that exists there.
func (s *State) NewEntry(now time.Time, rand io.Reader, first bool) (string, []byte, Entry, error) {
	// Entries carry whole seconds: the activation is rounded up, so that
	// no gateway seals with the key before the full delay has passed.
	e := Entry{Created: now.UTC().Truncate(time.Second)}
	e.Activate = now.UTC().Add(s.cfg.Delay + time.Second - 1).Truncate(time.Second)
	if first {
		e.Activate = e.Created
	}
	var idb [4]byte
	for range 8 {
		if _, err := io.ReadFull(rand, idb[:]); err != nil {
			return "", nil, Entry{}, err
		}
		e.ID = binary.BigEndian.Uint32(idb[:])
		if _, taken := s.entries[e.ID]; e.ID != 0 && !taken {
			break
		}
		e.ID = 0
	}
	if e.ID == 0 {
		return "", nil, Entry{}, nts.ErrKeyRing
	}
	if _, err := io.ReadFull(rand, e.Secret[:]); err != nil {
		return "", nil, Entry{}, err
	}
	raw, err := s.cfg.Sealer.Seal(e, rand)
	if err != nil {
		return "", nil, Entry{}, err
	}
	return s.cfg.Sealer.Name(e.ID), raw, e, nil
}

// Entries lists what is held, sealed as in the store, for the local copy.
func (s *State) Entries() []KV {
	out := make([]KV, 0, len(s.entries))
	for _, e := range s.sorted() {
		out = append(out, KV{Name: s.cfg.Sealer.Name(e.ID), Value: s.entries[e.ID].raw})
	}
	return out
}

// Info lists the held keys with their roles at now, for operators.
func (s *State) Info(now time.Time) []KeyInfo {
	pending, active := s.split(now)
	var out []KeyInfo
	for _, e := range pending {
		out = append(out, KeyInfo{ID: e.ID, Created: e.Created, Activate: e.Activate, Role: RolePending})
	}
	for i, e := range active {
		r := RoleOpening
		if i == 0 {
			r = RoleSealing
		}
		out = append(out, KeyInfo{ID: e.ID, Created: e.Created, Activate: e.Activate, Role: r})
	}
	return out
}

// KeyInfo describes one fleet key without its secret.
type KeyInfo struct {
	ID                uint32
	Created, Activate time.Time
	Role              string
}

// Key roles.
const (
	RolePending = "next"
	RoleSealing = "sealing"
	RoleOpening = "opening"
)
