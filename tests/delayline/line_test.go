package main

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

// fakeTUN is a device and its clock: packets arrive at set times; a read costs a
// microsecond of fake time and a wait jumps to its timeout or the next arrival, so a
// run is deterministic and instant.
type fakeTUN struct {
	now      time.Time
	arrivals []arrival
	written  []arrival
	writeErr error
	readErr  error
	discard  bool // keep no record of writes (for counting allocations)
}

type arrival struct {
	at  time.Time
	pkt []byte
}

var errDone = errors.New("nothing more will arrive")

func (f *fakeTUN) Now() time.Time { return f.now }

func (f *fakeTUN) Wait(timeout time.Duration) error {
	next := time.Time{}
	if len(f.arrivals) > 0 {
		next = f.arrivals[0].at
	}
	switch {
	case timeout < 0 && next.IsZero():
		return errDone
	case timeout < 0:
		f.now = next
	case !next.IsZero() && next.Before(f.now.Add(timeout)):
		f.now = next
	default:
		f.now = f.now.Add(timeout)
	}
	return nil
}

func (f *fakeTUN) Read(b []byte) (int, error) {
	f.now = f.now.Add(time.Microsecond)
	if f.readErr != nil {
		return 0, f.readErr
	}
	if len(f.arrivals) == 0 || f.arrivals[0].at.After(f.now) {
		return 0, ErrNoPacket
	}
	a := f.arrivals[0]
	f.arrivals = f.arrivals[1:]
	return copy(b, a.pkt), nil
}

func (f *fakeTUN) Write(b []byte) error {
	if f.discard {
		return f.writeErr
	}
	f.written = append(f.written, arrival{f.now, bytes.Clone(b)})
	return f.writeErr
}

func (f *fakeTUN) arrive(at time.Duration, pkt []byte) {
	f.arrivals = append(f.arrivals, arrival{t0.Add(at), pkt})
}

func run(t *testing.T, l *Line, f *fakeTUN, spin time.Duration) {
	t.Helper()
	if err := l.Run(f, f, spin, nil); err != errDone {
		t.Fatalf("Run: %v", err)
	}
}

// Packets leave in arrival order, each at its arrival + delay (to the microsecond a
// read costs here), with their bytes intact; one that arrives while the line spins
// for another is stamped when it came.
func TestLineDelaysInOrder(t *testing.T) {
	const d = 10 * time.Millisecond
	f := &fakeTUN{now: t0}
	arrivals := []time.Duration{0, time.Millisecond, 1500 * time.Microsecond, 9950 * time.Microsecond, 30 * time.Millisecond}
	for i, at := range arrivals {
		f.arrive(at, []byte{byte(i), 0xaa})
	}
	l := NewLine(d, 4, 1500)
	run(t, l, f, 100*time.Microsecond)
	if len(f.written) != len(arrivals) {
		t.Fatalf("wrote %d packets, want %d", len(f.written), len(arrivals))
	}
	for i, at := range arrivals {
		w := f.written[i]
		if want := []byte{byte(i), 0xaa}; !bytes.Equal(w.pkt, want) {
			t.Errorf("packet %d: %x, want %x", i, w.pkt, want)
		}
		due := t0.Add(at + d)
		if w.at.Before(due) || w.at.After(due.Add(3*time.Microsecond)) {
			t.Errorf("packet %d arrived at %v, written at %v: want %v after", i, at, w.at.Sub(t0), d)
		}
	}
	if s := l.Stats(); s.Received != 5 || s.Forwarded != 5 || s.Dropped != 0 || s.MaxQueued != 4 {
		t.Errorf("stats %+v", s)
	}
}

// A full line drops and counts, keeps what it holds, and takes packets again once a
// slot is free, allocating nothing.
func TestLineBoundedDrops(t *testing.T) {
	f := &fakeTUN{now: t0}
	for i := range 1000 {
		f.arrive(0, []byte{byte(i)})
	}
	f.arrive(2*time.Second, []byte{0x77})
	l := NewLine(time.Second, 2, 100)
	run(t, l, f, 100*time.Microsecond)
	s := l.Stats()
	if s.Received != 1001 || s.Dropped != 998 || s.Forwarded != 3 || s.MaxQueued != 2 {
		t.Fatalf("1000 into 2 slots, then 1: stats %+v", s)
	}
	for i, want := range [][]byte{{0}, {1}, {0x77}} {
		if !bytes.Equal(f.written[i].pkt, want) {
			t.Errorf("written %d: %x, want %x", i, f.written[i].pkt, want)
		}
	}
	// Reading into a full line, and releasing then refilling a slot, allocate nothing.
	var dev endless
	l = NewLine(time.Second, 2, 100)
	l.drain(dev, dev) // fills both slots (then drops the rest of what endless returns)
	if n := testing.AllocsPerRun(100, func() {
		l.release(dev, dev)
		l.admit(dev, dev)
		l.admit(dev, dev) // dropped
	}); n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
	if l.queued != 2 || l.Stats().MaxQueued != 2 {
		t.Errorf("queued %d, stats %+v", l.queued, l.Stats())
	}
}

// endless always has a packet, for counting allocations (one drain reads 64).
type endless struct{}

func (endless) Now() time.Time           { return t0 }
func (endless) Wait(time.Duration) error { return nil }
func (endless) Write([]byte) error       { return nil }
func (endless) Read([]byte) (int, error) { return 100, nil }

// A packet longer than the MTU is counted and not forwarded (it would have been
// truncated); a read error ends the run.
func TestLineOversizeAndReadError(t *testing.T) {
	f := &fakeTUN{now: t0}
	f.arrive(0, make([]byte, 200))
	f.arrive(0, make([]byte, 100))
	l := NewLine(time.Millisecond, 1, 100)
	run(t, l, f, 0)
	if s := l.Stats(); s.Received != 2 || s.Oversize != 1 || s.Forwarded != 1 || len(f.written[0].pkt) != 100 {
		t.Errorf("stats %+v, written %d", s, len(f.written))
	}
	boom := errors.New("boom")
	f = &fakeTUN{now: t0, readErr: boom}
	f.arrive(0, []byte{1})
	if err := NewLine(time.Millisecond, 1, 100).Run(f, f, 0, nil); err != boom {
		t.Errorf("Run with a failing read: %v", err)
	}
}

// A failed write is counted, and its slot returns to the line.
func TestLineWriteError(t *testing.T) {
	f := &fakeTUN{now: t0, writeErr: errors.New("EINVAL")}
	f.arrive(0, []byte{1})
	f.arrive(time.Second, []byte{2})
	l := NewLine(time.Millisecond, 1, 100)
	run(t, l, f, 0)
	if s := l.Stats(); s.WriteErrors != 2 || s.Forwarded != 0 || s.Dropped != 0 || l.queued != 0 {
		t.Errorf("stats %+v, queued %d", s, l.queued)
	}
}

// A closed stop ends the run.
func TestLineStop(t *testing.T) {
	f := &fakeTUN{now: t0}
	stop := make(chan struct{})
	close(stop)
	if err := NewLine(time.Millisecond, 1, 100).Run(f, f, 0, stop); err != nil {
		t.Errorf("Run after stop: %v", err)
	}
}

// A flood that never lets reading run dry does not hold back a due packet.
func TestLineFloodDoesNotStarveWrites(t *testing.T) {
	const d = time.Millisecond
	f := &fakeTUN{now: t0}
	f.arrive(0, []byte{1})
	for i := range 3000 { // one a microsecond, as fast as the fake reads
		f.arrive(time.Duration(i+1)*time.Microsecond, []byte{2})
	}
	l := NewLine(d, 4, 100)
	run(t, l, f, 100*time.Microsecond)
	if len(f.written) == 0 || !bytes.Equal(f.written[0].pkt, []byte{1}) {
		t.Fatalf("first packet not written first: %d written", len(f.written))
	}
	if late := f.written[0].at.Sub(t0.Add(d)); late < 0 || late > drainBatch*time.Microsecond {
		t.Errorf("first packet written %v after its due time, under a flood", late)
	}
	if s := l.Stats(); s.Dropped == 0 || s.Received != 3001 {
		t.Errorf("stats %+v", s)
	}
}
