package main

import (
	"errors"
	"sync/atomic"
	"time"
)

// Clock is the line's time: Now stamps a packet as it is read and tells when one is due.
type Clock interface {
	Now() time.Time
}

// ErrNoPacket is what a Device's Read returns when no packet is waiting.
var ErrNoPacket = errors.New("no packet waiting")

// Device is the line's packet source and sink (a TUN device, or a fake in tests).
type Device interface {
	// Wait returns when a packet may be readable, or after timeout (never, if
	// timeout < 0); early returns are harmless.
	Wait(timeout time.Duration) error
	// Read reads one packet without blocking, or returns ErrNoPacket.
	Read(b []byte) (int, error)
	Write(b []byte) error
}

// packet is one slot of the line: a buffer allocated once, reused for ever.
type packet struct {
	buf []byte
	n   int
	due time.Time
}

// Stats are the line's counters; Received = Forwarded + Dropped + Oversize +
// WriteErrors + what is still queued.
type Stats struct {
	Received    uint64 // packets read
	Forwarded   uint64 // packets written back
	Dropped     uint64 // read while every slot was taken
	Oversize    uint64 // longer than the MTU the line was made for (would be truncated)
	WriteErrors uint64
	MaxQueued   uint64 // the most packets held at once
	// Late is how far after its due time each packet's write began, summed and at
	// most: the line's own scheduling error. Not in it: the wake-up after a packet
	// came (before its stamp) and the write itself, which carries the packet through
	// the kernel's forwarding path to the far side.
	LateSum, LateMax time.Duration
	// Late50 counts the writes that began more than 50 µs after their due time.
	Late50 uint64
}

// Line holds every packet for a fixed delay and releases them in arrival order. Its
// memory is fixed when it is made: capacity slots of mtu+1 bytes and one scratch
// buffer; a packet that finds no free slot is read into the scratch buffer and
// dropped, so a flood costs counters, never memory.
//
// One goroutine runs it (Run); only the counters are shared, with Stats.
type Line struct {
	delay   time.Duration
	mtu     int
	slots   []packet // a ring: head is the oldest, queued of them are in use
	head    int
	queued  int
	scratch []byte

	received, forwarded, dropped, oversize, writeErrors, maxQueued, late50 atomic.Uint64
	lateSum, lateMax                                                       atomic.Int64
}

// NewLine makes a line of the given delay holding at most capacity packets of at
// most mtu bytes.
func NewLine(delay time.Duration, capacity, mtu int) *Line {
	l := &Line{delay: delay, mtu: mtu, slots: make([]packet, capacity), scratch: make([]byte, mtu+1)}
	for i := range l.slots {
		// One byte more than the MTU: a read that fills it was truncated.
		l.slots[i].buf = make([]byte, mtu+1)
	}
	return l
}

// Run moves packets until stop is closed or the device fails. It sleeps in dev.Wait
// until spin before the next due time, then busy-waits, reading (and stamping) what
// arrives meanwhile, so that a packet that comes while another is due is stamped
// when it came, not after the other's write.
func (l *Line) Run(dev Device, clk Clock, spin time.Duration, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if l.queued == 0 {
			if err := dev.Wait(-1); err != nil {
				return err
			}
		} else if d := l.slots[l.head].due.Sub(clk.Now()); d > spin {
			if err := dev.Wait(d - spin); err != nil {
				return err
			}
		} else {
			due := l.slots[l.head].due
			for clk.Now().Before(due) {
				if err := l.drain(dev, clk); err != nil {
					return err
				}
			}
			l.release(dev, clk)
		}
		if err := l.drain(dev, clk); err != nil {
			return err
		}
	}
}

// drainBatch bounds one drain: under a flood, reading never runs out, and a due
// packet must still be written on time.
const drainBatch = 64

// drain reads the packets waiting, at most drainBatch.
func (l *Line) drain(dev Device, clk Clock) error {
	for range drainBatch {
		err := l.admit(dev, clk)
		if errors.Is(err, ErrNoPacket) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// admit reads one packet, stamps it and queues it, or counts why not.
func (l *Line) admit(dev Device, clk Clock) error {
	var p *packet
	buf := l.scratch
	if l.queued < len(l.slots) {
		p = &l.slots[(l.head+l.queued)%len(l.slots)]
		buf = p.buf
	}
	n, err := dev.Read(buf)
	now := clk.Now()
	if err != nil {
		return err
	}
	l.received.Add(1)
	switch {
	case n > l.mtu:
		l.oversize.Add(1)
	case p == nil:
		l.dropped.Add(1)
	default:
		p.n, p.due = n, now.Add(l.delay)
		l.queued++
		if q := uint64(l.queued); q > l.maxQueued.Load() {
			l.maxQueued.Store(q)
		}
	}
	return nil
}

// release writes the oldest packet.
func (l *Line) release(dev Device, clk Clock) {
	p := &l.slots[l.head]
	late := clk.Now().Sub(p.due)
	err := dev.Write(p.buf[:p.n])
	l.head = (l.head + 1) % len(l.slots)
	l.queued--
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
		LateSum:     time.Duration(l.lateSum.Load()),
		LateMax:     time.Duration(l.lateMax.Load()),
		Late50:      l.late50.Load(),
	}
}
