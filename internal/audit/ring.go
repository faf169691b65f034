package audit

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// Ring is the hand-off from the per-packet path to the episode aggregator:
// a bounded lock-free multi-producer queue (D. Vyukov's bounded MPMC
// queue, drained by one consumer). Offer costs one compare-and-swap and a
// few stores, never allocates, never locks and never formats; when the
// ring is full the report is only counted (Lost), so a flood costs the
// serving path no more than a counter. The aggregator drains it a few
// times a second.
type Ring struct {
	slots []ringSlot
	mask  uint64
	head  atomic.Uint64 // next position to fill (producers)
	tail  uint64        // next position to drain (the single consumer)
	lost  atomic.Uint64
}

type ringSlot struct {
	seq  atomic.Uint64 // == position: free; position+1: filled
	addr netip.Addr
	kind Kind
	code uint8
}

// Kind says which service a report comes from.
type Kind uint8

// Kinds of report.
const (
	KindNTP   Kind = iota // code is an ntp.Reason
	KindNTSKE             // code is a kelisten failure reason
	numKinds
)

// DefaultRingSize: 4096 reports between drains (every 100 ms) is 40,000
// refusals a second attributed to their source; beyond that a flood is
// counted, not attributed, which is all an operator can act on anyway.
const DefaultRingSize = 4096

// NewRing returns a ring of size slots, rounded up to a power of two.
func NewRing(size int) *Ring {
	n := 1
	for n < size {
		n <<= 1
	}
	r := &Ring{slots: make([]ringSlot, n), mask: uint64(n - 1)}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

// Offer reports one refusal of addr; safe for concurrent use.
func (r *Ring) Offer(addr netip.Addr, kind Kind, code uint8) {
	pos := r.head.Load()
	for {
		s := &r.slots[pos&r.mask]
		seq := s.seq.Load()
		switch {
		case seq == pos:
			if r.head.CompareAndSwap(pos, pos+1) {
				s.addr, s.kind, s.code = addr, kind, code
				s.seq.Store(pos + 1)
				return
			}
			pos = r.head.Load()
		case seq < pos:
			r.lost.Add(1) // full: the consumer has not freed this slot
			return
		default:
			pos = r.head.Load()
		}
	}
}

// drain hands every filled slot to fn, in order; one consumer only.
func (r *Ring) drain(fn func(addr netip.Addr, kind Kind, code uint8)) {
	for {
		s := &r.slots[r.tail&r.mask]
		if s.seq.Load() != r.tail+1 {
			return
		}
		fn(s.addr, s.kind, s.code)
		s.seq.Store(r.tail + r.mask + 1)
		r.tail++
	}
}

// takeLost returns and resets the count of reports that found the ring full.
func (r *Ring) takeLost() uint64 { return r.lost.Swap(0) }

// DrainForBenchmark empties r every drainInterval from a goroutine, as
// the aggregator does, until the returned stop is called. For benchmarks
// of the producer side (the per-packet path) only.
func DrainForBenchmark(r *Ring) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(drainInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			r.drain(func(netip.Addr, Kind, uint8) {})
			r.takeLost()
		}
	}()
	return func() { close(done); <-finished }
}
