package main

import (
	"sync/atomic"
	"time"
)

// Clock is the delay line's view of time: Now stamps a packet on arrival, WaitUntil
// returns at (never before) a packet's due time. Injected so that the ordering, delay
// and drop logic is tested without a TUN device or real waiting.
type Clock interface {
	Now() time.Time
	WaitUntil(t time.Time)
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
	Dropped     uint64 // read while all slots were taken
	Oversize    uint64 // longer than the MTU the line was made for (would be truncated)
	WriteErrors uint64
	MaxQueued   uint64 // the most packets held at once
	// Late is how far after its due time each packet's write began, summed and at
	// most: the line's own scheduling error. Not in it: the wake-up after a packet
	// came (before its stamp) and the write itself, which carries the packet through
	// the kernel's forwarding path to the far side.
	LateSum, LateMax time.Duration
}

// Line holds every packet for a fixed delay and releases them in arrival order. Its
// memory is fixed when it is made: capacity slots of mtu+1 bytes and one scratch
// buffer; a packet that finds no free slot is read into the scratch buffer and
// dropped, so a flood costs counters, never memory.
type Line struct {
	delay   time.Duration
	mtu     int
	free    chan *packet // slots ready for a read
	queue   chan *packet // slots waiting for their due time, in arrival order
	scratch []byte

	received, forwarded, dropped, oversize, writeErrors atomic.Uint64
	queued, maxQueued                                   atomic.Int64
	lateSum, lateMax                                    atomic.Int64
}

// NewLine makes a line of the given delay holding at most capacity packets of at
// most mtu bytes.
func NewLine(delay time.Duration, capacity, mtu int) *Line {
	l := &Line{
		delay:   delay,
		mtu:     mtu,
		free:    make(chan *packet, capacity),
		queue:   make(chan *packet, capacity),
		scratch: make([]byte, mtu+1),
	}
	for range capacity {
		// One byte more than the MTU: a read that fills it was truncated.
		l.free <- &packet{buf: make([]byte, mtu+1)}
	}
	return l
}

// Admit reads one packet with read and queues it, stamped with clk.Now() as soon as
// the read returns. Only one goroutine may call Admit. It returns read's error.
func (l *Line) Admit(read func([]byte) (int, error), clk Clock) error {
	var p *packet
	select {
	case p = <-l.free:
	default:
	}
	buf := l.scratch
	if p != nil {
		buf = p.buf
	}
	n, err := read(buf)
	now := clk.Now()
	if err != nil {
		if p != nil {
			l.free <- p
		}
		return err
	}
	l.received.Add(1)
	switch {
	case n > l.mtu:
		l.oversize.Add(1)
		if p != nil {
			l.free <- p
		}
	case p == nil:
		l.dropped.Add(1)
	default:
		p.n, p.due = n, now.Add(l.delay)
		q := l.queued.Add(1)
		if q > l.maxQueued.Load() {
			l.maxQueued.Store(q)
		}
		// Never blocks: there are only as many slots as the queue holds.
		l.queue <- p
	}
	return nil
}

// Release writes queued packets at their due times, in order, until stop is closed.
// Only one goroutine may call Release.
func (l *Line) Release(write func([]byte) error, clk Clock, stop <-chan struct{}) {
	for {
		select {
		case <-stop: // before the queue: a closed stop wins over waiting packets
			return
		default:
		}
		var p *packet
		select {
		case p = <-l.queue:
		case <-stop:
			return
		}
		clk.WaitUntil(p.due)
		late := clk.Now().Sub(p.due)
		err := write(p.buf[:p.n])
		l.queued.Add(-1)
		l.free <- p
		if err != nil {
			l.writeErrors.Add(1)
			continue
		}
		l.forwarded.Add(1)
		l.lateSum.Add(int64(late))
		if int64(late) > l.lateMax.Load() {
			l.lateMax.Store(int64(late))
		}
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
		MaxQueued:   uint64(l.maxQueued.Load()),
		LateSum:     time.Duration(l.lateSum.Load()),
		LateMax:     time.Duration(l.lateMax.Load()),
	}
}
