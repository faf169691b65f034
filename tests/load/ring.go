package main

import (
	"fmt"
	"sync/atomic"
)

// Ring remembers the nonces of requests in flight, with their send times,
// in a fixed number of slots: nothing is allocated per request. The slot of
// request number seq is seq mod size, and its index is also written into the
// low bits of the nonce, so a reply's origin timestamp leads straight to its
// slot; the rest of the nonce is random and must match in full. A request
// still unanswered when its slot comes round again is forgotten (counted as
// lost; a reply that arrives later is "unmatched").
//
// One goroutine calls Put, any number call Take.
type Ring struct {
	mask  uint64
	slots []ringSlot
}

type ringSlot struct {
	nonce atomic.Uint64 // 0 = empty or taken
	sent  atomic.Int64  // send time, ns since the run started
}

// NewRing returns a ring of size slots; size must be a power of two, 2..2^24.
func NewRing(size int) (*Ring, error) {
	if err := checkRingSize(size); err != nil {
		return nil, err
	}
	return &Ring{mask: uint64(size - 1), slots: make([]ringSlot, size)}, nil
}

// maxRingSize bounds a ring's memory (16 B per slot: 256 MiB at most).
const maxRingSize = 1 << 24

func checkRingSize(size int) error {
	if size < 2 || size > maxRingSize || size&(size-1) != 0 {
		return fmt.Errorf("load: ring size must be a power of two in 2..%d, got %d", maxRingSize, size)
	}
	return nil
}

// Put records request number seq, sent at sent (ns), and returns its nonce:
// random's high bits with the slot index in the low bits. It never returns 0.
func (r *Ring) Put(seq, random uint64, sent int64) uint64 {
	i := seq & r.mask
	nonce := random&^r.mask | i
	if nonce == 0 {
		nonce = r.mask + 1
	}
	s := &r.slots[i]
	// Empty the slot before changing its time, so that a Take racing with
	// this Put either took the old request with its old time or finds nothing.
	s.nonce.Store(0)
	s.sent.Store(sent)
	s.nonce.Store(nonce)
	return nonce
}

// Take matches a reply's origin timestamp: it returns the send time of the
// request with that nonce and removes it, so a duplicate reply does not
// match twice.
func (r *Ring) Take(origin uint64) (sent int64, ok bool) {
	if origin == 0 {
		return 0, false
	}
	s := &r.slots[origin&r.mask]
	if s.nonce.Load() != origin {
		return 0, false
	}
	sent = s.sent.Load()
	if !s.nonce.CompareAndSwap(origin, 0) {
		return 0, false
	}
	return sent, true
}
