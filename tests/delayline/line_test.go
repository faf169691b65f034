package main

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

// fakeLinks is a two-port device and its clock: frames arrive on a port at set times
// (the kernel's stamp); a read costs a microsecond of fake time and a wait jumps to its
// timeout or to the next arrival plus wake (the line's wake-up latency), so a run is
// deterministic and instant.
type fakeLinks struct {
	now      time.Time
	wake     time.Duration
	arrivals [2][]arrival // by port
	written  [2][]arrival // by the port written to
	stamp    func(at time.Time) time.Time
	writeErr error
	readErr  error
	discard  bool // keep no record of writes (for counting allocations)
}

type arrival struct {
	at  time.Time
	pkt []byte
}

var errDone = errors.New("nothing more will arrive")

func (f *fakeLinks) Now() time.Time { return f.now }

func (f *fakeLinks) Wait(timeout time.Duration) error {
	next := time.Time{}
	for _, a := range f.arrivals {
		if len(a) > 0 && (next.IsZero() || a[0].at.Before(next)) {
			next = a[0].at
		}
	}
	if !next.IsZero() {
		next = next.Add(f.wake)
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

func (f *fakeLinks) Read(port int, b []byte) (int, time.Time, error) {
	f.now = f.now.Add(time.Microsecond)
	if f.readErr != nil {
		return 0, time.Time{}, f.readErr
	}
	q := f.arrivals[port]
	if len(q) == 0 || q[0].at.After(f.now) {
		return 0, time.Time{}, ErrNoPacket
	}
	a := q[0]
	f.arrivals[port] = q[1:]
	at := a.at
	if f.stamp != nil {
		at = f.stamp(at)
	}
	copy(b, a.pkt)
	return len(a.pkt), at, nil
}

func (f *fakeLinks) Write(port int, b []byte) error {
	if f.discard {
		return f.writeErr
	}
	f.written[port] = append(f.written[port], arrival{f.now, bytes.Clone(b)})
	return f.writeErr
}

func (f *fakeLinks) arrive(port int, at time.Duration, pkt []byte) {
	f.arrivals[port] = append(f.arrivals[port], arrival{t0.Add(at), pkt})
}

func run(t *testing.T, l *Line, f *fakeLinks, spin time.Duration) {
	t.Helper()
	if err := l.Run(f, f, spin, nil); err != errDone {
		t.Fatalf("Run: %v", err)
	}
}

// Frames leave by the other port in arrival order, each at its arrival + delay (to the
// microsecond a read costs here), with their bytes intact; one that arrives while the
// line spins for another is due when it came.
func TestLineDelaysInOrder(t *testing.T) {
	const d = 10 * time.Millisecond
	f := &fakeLinks{now: t0}
	arrivals := []time.Duration{0, time.Millisecond, 1500 * time.Microsecond, 9950 * time.Microsecond, 30 * time.Millisecond}
	for i, at := range arrivals {
		f.arrive(0, at, []byte{byte(i), 0xaa})
	}
	l := NewLine(d, 4, 1500)
	run(t, l, f, 100*time.Microsecond)
	if len(f.written[1]) != len(arrivals) || len(f.written[0]) != 0 {
		t.Fatalf("wrote %d frames to port 1 and %d to port 0, want %d and 0", len(f.written[1]), len(f.written[0]), len(arrivals))
	}
	for i, at := range arrivals {
		w := f.written[1][i]
		if want := []byte{byte(i), 0xaa}; !bytes.Equal(w.pkt, want) {
			t.Errorf("frame %d: %x, want %x", i, w.pkt, want)
		}
		due := t0.Add(at + d)
		if w.at.Before(due) || w.at.After(due.Add(3*time.Microsecond)) {
			t.Errorf("frame %d arrived at %v, written at %v: want %v after", i, at, w.at.Sub(t0), d)
		}
	}
	if s := l.Stats(); s.Received != 5 || s.Forwarded != 5 || s.Dropped != 0 || s.MaxQueued != 4 || s.Unstamped != 0 {
		t.Errorf("stats %+v", s)
	}
}

// The two directions are independent: each frame goes to the other port at its own due
// time, whichever direction's frame came first; and a frame is due a delay after the
// kernel received it, however late the line woke up to read it.
func TestLineBothWaysFromKernelStamps(t *testing.T) {
	const d = time.Millisecond
	f := &fakeLinks{now: t0, wake: 300 * time.Microsecond}
	f.arrive(0, 0, []byte{0})
	f.arrive(1, 100*time.Microsecond, []byte{1})
	f.arrive(0, 200*time.Microsecond, []byte{2})
	f.arrive(1, 5*time.Millisecond, []byte{3})
	l := NewLine(d, 4, 1500)
	run(t, l, f, 50*time.Microsecond)
	want := [2][]struct {
		pkt byte
		due time.Duration
	}{
		{{1, 1100 * time.Microsecond}, {3, 6 * time.Millisecond}},
		{{0, time.Millisecond}, {2, 1200 * time.Microsecond}},
	}
	for port := range want {
		if len(f.written[port]) != len(want[port]) {
			t.Fatalf("port %d: %d frames written, want %d", port, len(f.written[port]), len(want[port]))
		}
		for i, w := range want[port] {
			got := f.written[port][i]
			if got.pkt[0] != w.pkt || got.at.Sub(t0) < w.due || got.at.Sub(t0) > w.due+3*time.Microsecond {
				t.Errorf("port %d, frame %d: %x at %v, want %x at %v", port, i, got.pkt, got.at.Sub(t0), w.pkt, w.due)
			}
		}
	}
}

// A frame without a believable kernel stamp (none, one from the future, or a TCP
// segment's monotonic pacing time) is due a delay after it was read, and counted.
func TestLineUnbelievableStamps(t *testing.T) {
	const d = time.Millisecond
	for name, stamp := range map[string]func(time.Time) time.Time{
		"none":      func(time.Time) time.Time { return time.Time{} },
		"future":    func(at time.Time) time.Time { return at.Add(time.Hour) },
		"monotonic": func(time.Time) time.Time { return time.Unix(0, int64(16*time.Hour)) },
	} {
		f := &fakeLinks{now: t0, wake: 300 * time.Microsecond, stamp: stamp}
		f.arrive(0, 0, []byte{0})
		l := NewLine(d, 4, 1500)
		run(t, l, f, 50*time.Microsecond)
		if len(f.written[1]) != 1 {
			t.Fatalf("%s: %d frames written", name, len(f.written[1]))
		}
		// Woken at 300 µs, read at 301.
		if at := f.written[1][0].at.Sub(t0); at < 1301*time.Microsecond || at > 1304*time.Microsecond {
			t.Errorf("%s: written at %v, want a delay after the read at 301µs", name, at)
		}
		if s := l.Stats(); s.Unstamped != 1 || s.Forwarded != 1 {
			t.Errorf("%s: stats %+v", name, s)
		}
	}
}

// A full direction drops and counts, keeps what it holds, and takes frames again once a
// slot is free, allocating nothing; the other direction is not held back by it.
func TestLineBoundedDrops(t *testing.T) {
	f := &fakeLinks{now: t0}
	for i := range 1000 {
		f.arrive(0, 0, []byte{byte(i)})
	}
	f.arrive(1, time.Millisecond, []byte{0x55})
	f.arrive(0, 2*time.Second, []byte{0x77})
	l := NewLine(time.Second, 2, 100)
	run(t, l, f, 100*time.Microsecond)
	s := l.Stats()
	if s.Received != 1002 || s.Dropped != 998 || s.Forwarded != 4 || s.MaxQueued != 2 {
		t.Fatalf("1000 into 2 slots, then 1, and 1 the other way: stats %+v", s)
	}
	for i, want := range [][]byte{{0}, {1}, {0x77}} {
		if !bytes.Equal(f.written[1][i].pkt, want) {
			t.Errorf("written %d: %x, want %x", i, f.written[1][i].pkt, want)
		}
	}
	if len(f.written[0]) != 1 || f.written[0][0].pkt[0] != 0x55 {
		t.Errorf("the other direction: %v", f.written[0])
	}
	// Reading into a full line, and releasing then refilling a slot, allocate nothing.
	var dev endless
	l = NewLine(time.Second, 2, 100)
	l.drain(dev, dev) // fills both directions' slots (then drops the rest of what endless returns)
	if n := testing.AllocsPerRun(100, func() {
		l.release(dev, dev, &l.lanes[0])
		l.admit(dev, dev, 0)
		l.admit(dev, dev, 0) // dropped
	}); n != 0 {
		t.Errorf("%v allocations per frame", n)
	}
	if l.lanes[0].queued != 2 || l.Stats().MaxQueued != 2 {
		t.Errorf("queued %d, stats %+v", l.lanes[0].queued, l.Stats())
	}
}

// endless always has a frame, for counting allocations (one drain reads 64 a port).
type endless struct{}

func (endless) Now() time.Time                           { return t0 }
func (endless) Wait(time.Duration) error                 { return nil }
func (endless) Write(int, []byte) error                  { return nil }
func (endless) Read(int, []byte) (int, time.Time, error) { return 100, t0, nil }

// A frame longer than the longest the line takes is counted and not forwarded (it was
// truncated); a read error ends the run.
func TestLineOversizeAndReadError(t *testing.T) {
	f := &fakeLinks{now: t0}
	f.arrive(0, 0, make([]byte, 200))
	f.arrive(0, 0, make([]byte, 100))
	l := NewLine(time.Millisecond, 1, 100)
	run(t, l, f, 0)
	if s := l.Stats(); s.Received != 2 || s.Oversize != 1 || s.Forwarded != 1 || len(f.written[1][0].pkt) != 100 {
		t.Errorf("stats %+v, written %d", s, len(f.written[1]))
	}
	boom := errors.New("boom")
	f = &fakeLinks{now: t0, readErr: boom}
	f.arrive(0, 0, []byte{1})
	if err := NewLine(time.Millisecond, 1, 100).Run(f, f, 0, nil); err != boom {
		t.Errorf("Run with a failing read: %v", err)
	}
}

// A failed write is counted, and its slot returns to the line.
func TestLineWriteError(t *testing.T) {
	f := &fakeLinks{now: t0, writeErr: errors.New("EINVAL")}
	f.arrive(0, 0, []byte{1})
	f.arrive(0, time.Second, []byte{2})
	l := NewLine(time.Millisecond, 1, 100)
	run(t, l, f, 0)
	if s := l.Stats(); s.WriteErrors != 2 || s.Forwarded != 0 || s.Dropped != 0 || l.lanes[0].queued != 0 {
		t.Errorf("stats %+v, queued %d", s, l.lanes[0].queued)
	}
}

// A closed stop ends the run.
func TestLineStop(t *testing.T) {
	f := &fakeLinks{now: t0}
	stop := make(chan struct{})
	close(stop)
	if err := NewLine(time.Millisecond, 1, 100).Run(f, f, 0, stop); err != nil {
		t.Errorf("Run after stop: %v", err)
	}
}

// A flood that never lets reading run dry does not hold back a due frame.
func TestLineFloodDoesNotStarveWrites(t *testing.T) {
	const d = time.Millisecond
	f := &fakeLinks{now: t0}
	f.arrive(0, 0, []byte{1})
	for i := range 3000 { // one a microsecond, as fast as the fake reads
		f.arrive(0, time.Duration(i+1)*time.Microsecond, []byte{2})
	}
	l := NewLine(d, 4, 100)
	run(t, l, f, 100*time.Microsecond)
	if len(f.written[1]) == 0 || !bytes.Equal(f.written[1][0].pkt, []byte{1}) {
		t.Fatalf("first frame not written first: %d written", len(f.written[1]))
	}
	if late := f.written[1][0].at.Sub(t0.Add(d)); late < 0 || late > 2*drainBatch*time.Microsecond {
		t.Errorf("first frame written %v after its due time, under a flood", late)
	}
	if s := l.Stats(); s.Dropped == 0 || s.Received != 3001 {
		t.Errorf("stats %+v", s)
	}
}
