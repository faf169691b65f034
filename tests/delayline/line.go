package main

import (
	"errors"
	"sync/atomic"
	"time"
)

// Clock is the line's time: it stamps a packet whose arrival the device could not tell,
// and tells when one is due.
type Clock interface {
	Now() time.Time
}

// ErrNoPacket is what a Device's Read returns when no packet is waiting.
var ErrNoPacket = errors.New("no packet waiting")

// Device is the line's two ports (packet sockets on two links, or a fake in tests):
// what is read from one port is written to the other.
type Device interface {
	// Wait returns when a packet may be readable on either port, or after timeout
	// (never, if timeout < 0); early returns are harmless.
	Wait(timeout time.Duration) error
	// Read reads one packet from port (0 or 1) without blocking, or returns
	// ErrNoPacket. n is the packet's whole length, more than len(b) if it was
	// truncated; at is when the kernel received it (zero: unknown).
	Read(port int, b []byte) (n int, at time.Time, err error)
	Write(port int, b []byte) error
}

// maxStampAge bounds how old a packet's arrival stamp may be. An older one is not a
// receive time: a TCP segment keeps its sender's pacing time, taken on the monotonic
// clock, which reads as a moment in 1970.
const maxStampAge = time.Second

// packet is one slot of the line: a buffer allocated once, reused for ever.
type packet struct {
	buf []byte
	n   int
	due time.Time
}

// lane holds what came in on one port, oldest first, in a ring of fixed slots.
type lane struct {
	slots  []packet
	head   int
	queued int
}

func (q *lane) oldest() *packet { return &q.slots[q.head] }

// Stats are the line's counters; Received = Forwarded + Dropped + Oversize +
// WriteErrors + what is still queued.
type Stats struct {
	Received    uint64 // packets read
	Forwarded   uint64 // packets written to the other port
	Dropped     uint64 // read while every slot of their direction was taken
	Oversize    uint64 // longer than the line's longest frame (truncated: not forwarded)
	WriteErrors uint64
	MaxQueued   uint64 // the most packets held at once in one direction
	// Unstamped counts packets whose arrival the kernel did not stamp (or stamped
	// with something that is not a receive time): they are due a delay after they
	// were read, which is later than they came by the line's wake-up.
	Unstamped uint64
	// Late is how far after its due time each packet's write began, summed and at
	// most: the line's own scheduling error. Not in it: the write itself, which
	// carries the packet through the far link to its receiver.
	LateSum, LateMax time.Duration
	// Late50 counts the writes that began more than 50 µs after their due time.
	Late50 uint64
}

// Line holds every packet for a fixed delay after the kernel received it and
// releases each direction's packets in arrival order. Its memory is fixed when it is
// made: capacity slots of maxFrame bytes for each direction and one scratch buffer; a
// packet that finds no free slot is read into the scratch buffer and dropped, so a
// flood costs counters, never memory.
//
// One goroutine runs it (Run); only the counters are shared, with Stats.
type Line struct {
	delay    time.Duration
	maxFrame int
	lanes    [2]lane // lanes[p] holds what was read from port p, for port 1-p
	scratch  []byte

	received, forwarded, dropped, oversize, writeErrors, maxQueued, unstamped, late50 atomic.Uint64
	lateSum, lateMax                                                                  atomic.Int64
}

// NewLine makes a line of the given delay holding at most capacity packets of at
// most maxFrame bytes in each direction.
func NewLine(delay time.Duration, capacity, maxFrame int) *Line {
	l := &Line{delay: delay, maxFrame: maxFrame, scratch: make([]byte, maxFrame)}
	for i := range l.lanes {
		l.lanes[i].slots = make([]packet, capacity)
		for j := range l.lanes[i].slots {
			l.lanes[i].slots[j].buf = make([]byte, maxFrame)
		}
	}
	return l
}

// Run moves packets until stop is closed or the device fails. It sleeps in dev.Wait
// until spin before the next due time, then busy-waits, reading what arrives
// meanwhile, and writes the packet when it falls due. A packet is due a delay after
// the kernel received it, not after the line read it: the line's wake-up when a
// packet comes (tens of µs on a busy machine) is not added to it.
func (l *Line) Run(dev Device, clk Clock, spin time.Duration, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		q := l.next()
		if q == nil {
			if err := dev.Wait(-1); err != nil {
				return err
			}
		} else if d := q.oldest().due.Sub(clk.Now()); d > spin {
			if err := dev.Wait(d - spin); err != nil {
				return err
			}
		} else {
			due := q.oldest().due
			for clk.Now().Before(due) {
				if err := l.drain(dev, clk); err != nil {
					return err
				}
			}
			l.release(dev, clk, q)
		}
		if err := l.drain(dev, clk); err != nil {
			return err
		}
	}
}

// next is the lane whose oldest packet falls due first, nil if both are empty.
func (l *Line) next() *lane {
	a, b := &l.lanes[0], &l.lanes[1]
	switch {
	case a.queued == 0 && b.queued == 0:
		return nil
	case b.queued == 0:
		return a
	case a.queued == 0:
		return b
	case b.oldest().due.Before(a.oldest().due):
		return b
	}
	return a
}

// drainBatch bounds one drain of a port: under a flood, reading never runs out, and a
// due packet must still be written on time.
const drainBatch = 64

// drain reads the packets waiting on both ports, at most drainBatch from each.
func (l *Line) drain(dev Device, clk Clock) error {
	for port := range l.lanes {
		for range drainBatch {
			err := l.admit(dev, clk, port)
			if errors.Is(err, ErrNoPacket) {
				break
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// admit reads one packet from port, sets when it is due and queues it, or counts why
// not.
func (l *Line) admit(dev Device, clk Clock, port int) error {
	q := &l.lanes[port]
	var p *packet
	buf := l.scratch
	if q.queued < len(q.slots) {
		p = &q.slots[(q.head+q.queued)%len(q.slots)]
		buf = p.buf
	}
	n, at, err := dev.Read(port, buf)
	if err != nil {
		return err
	}
	l.received.Add(1)
	switch {
	case n > l.maxFrame:
		l.oversize.Add(1)
	case p == nil:
		l.dropped.Add(1)
	default:
		if now := clk.Now(); at.IsZero() || at.After(now) || now.Sub(at) > maxStampAge {
			at = now
			l.unstamped.Add(1)
		}
		p.n, p.due = n, at.Add(l.delay)
		q.queued++
		if n := uint64(q.queued); n > l.maxQueued.Load() {
			l.maxQueued.Store(n)
		}
	}
	return nil
}

// release writes q's oldest packet to the other port.
func (l *Line) release(dev Device, clk Clock, q *lane) {
	p := q.oldest()
	late := clk.Now().Sub(p.due)
	to := 1
	if q == &l.lanes[1] {
		to = 0
	}
	err := dev.Write(to, p.buf[:p.n])
	q.head = (q.head + 1) % len(q.slots)
	q.queued--
	if err != nil {
		l.writeErrors.Add(1)
		return
	}
	l.forwarded.Add(1)
	l.lateSum.Add(int64(late))
	if late > 50*time.Microsecond {
		l.late50.Add(1)
	}
	if int64(late) > l.lateMax.Load() {
		l.lateMax.Store(int64(late))
	}
}

// Stats returns the counters (each read atomically, not all at one instant).
func (l *Line) Stats() Stats {
	return Stats{
		Received:    l.received.Load(),
		Forwarded:   l.forwarded.Load(),
		Dropped:     l.dropped.Load(),
		Oversize:    l.oversize.Load(),
		WriteErrors: l.writeErrors.Load(),
		MaxQueued:   l.maxQueued.Load(),
		Unstamped:   l.unstamped.Load(),
		LateSum:     time.Duration(l.lateSum.Load()),
		LateMax:     time.Duration(l.lateMax.Load()),
		Late50:      l.late50.Load(),
	}
}
