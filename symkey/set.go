package symkey

import (
	"errors"
	"fmt"
	"iter"
	"slices"
)

// ErrDuplicate is returned (wrapped) when two keys share an ID: chrony only
// warns and then uses either one, which makes authentication depend on sort
// order; timegate refuses.
var ErrDuplicate = errors.New("symkey: duplicate key ID")

// Set is an immutable collection of keys indexed by ID, safe for concurrent
// use. A nil *Set is an empty set. A new file is loaded as a new Set and
// swapped in whole by the caller.
type Set struct {
	byID map[uint32]*Key
	ids  []uint32 // ascending
}

// NewSet builds a set from keys with distinct IDs.
func NewSet(keys ...*Key) (*Set, error) {
	s := &Set{byID: make(map[uint32]*Key, len(keys))}
	for _, k := range keys {
		if _, dup := s.byID[k.id]; dup {
			return nil, fmt.Errorf("%w: %d", ErrDuplicate, k.id)
		}
		s.byID[k.id] = k
		s.ids = append(s.ids, k.id)
	}
	slices.Sort(s.ids)
	return s, nil
}

// Lookup returns the key with the given ID.
func (s *Set) Lookup(id uint32) (*Key, bool) {
	if s == nil {
		return nil, false
	}
	k, ok := s.byID[id]
	return k, ok
}

// Len returns the number of keys.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.ids)
}

// All yields the keys in ascending ID order.
func (s *Set) All() iter.Seq[*Key] {
	return func(yield func(*Key) bool) {
		if s == nil {
			return
		}
		for _, id := range s.ids {
			if !yield(s.byID[id]) {
				return
			}
		}
	}
}
