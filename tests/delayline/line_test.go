package main

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock advances only when the line waits, so every due time is observable.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) WaitUntil(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, t)
	if t.After(c.now) {
		c.now = t
	}
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func readOf(pkt []byte) func([]byte) (int, error) {
	return func(b []byte) (int, error) { return copy(b, pkt), nil }
}

// Packets leave in arrival order, each at its arrival + delay, with their bytes intact.
func TestLineDelaysInOrder(t *testing.T) {
	const d = 10 * time.Millisecond
	t0 := time.Unix(1000, 0)
	clk := &fakeClock{now: t0}
	l := NewLine(d, 4, 1500)
	arrivals := []time.Duration{0, time.Millisecond, 1500 * time.Microsecond}
	for i, at := range arrivals {
		clk.set(t0.Add(at))
		if err := l.Admit(readOf([]byte{byte(i), 0xaa}), clk); err != nil {
			t.Fatal(err)
		}
	}
	var out [][]byte
	var outAt []time.Time
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Release(func(b []byte) error {
			out = append(out, bytes.Clone(b))
			outAt = append(outAt, clk.Now())
			if len(out) == len(arrivals) {
				close(stop)
			}
			return nil
		}, clk, stop)
	}()
	<-done
	for i, at := range arrivals {
		if want := []byte{byte(i), 0xaa}; !bytes.Equal(out[i], want) {
			t.Errorf("packet %d: %x, want %x", i, out[i], want)
		}
		if want := t0.Add(at + d); !outAt[i].Equal(want) || !clk.waits[i].Equal(want) {
			t.Errorf("packet %d written at %v (waited until %v), want %v", i, outAt[i], clk.waits[i], want)
		}
	}
	if s := l.Stats(); s.Received != 3 || s.Forwarded != 3 || s.Dropped != 0 || s.MaxQueued != 3 || s.LateMax != 0 {
		t.Errorf("stats %+v", s)
	}
}

// A full line drops and counts, keeps what it holds, and takes packets again once a
// slot is free; its buffers are the ones it was made with.
func TestLineBoundedDrops(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	l := NewLine(time.Second, 2, 100)
	slots := map[*byte]bool{}
	for range 2 {
		p := <-l.free
		slots[&p.buf[0]] = true
		l.free <- p
	}
	for i := range 1000 {
		if err := l.Admit(readOf([]byte{byte(i)}), clk); err != nil {
			t.Fatal(err)
		}
	}
	s := l.Stats()
	if s.Received != 1000 || s.Dropped != 998 || s.MaxQueued != 2 || len(l.queue) != 2 {
		t.Fatalf("after 1000 into 2 slots: stats %+v, queued %d", s, len(l.queue))
	}
	// Release one: the next packet finds its slot.
	stop := make(chan struct{})
	var got []byte
	l.Release(func(b []byte) error { got = bytes.Clone(b); close(stop); return nil }, clk, stop)
	if !bytes.Equal(got, []byte{0}) {
		t.Errorf("first released %x, want the first admitted (00)", got)
	}
	if err := l.Admit(readOf([]byte{0x77}), clk); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Dropped != 998 || len(l.queue) != 2 {
		t.Errorf("after a release: stats %+v, queued %d", s, len(l.queue))
	}
	for range 2 {
		p := <-l.queue
		if !slots[&p.buf[0]] {
			t.Error("a queued packet is in a buffer the line was not made with")
		}
	}
}

// A packet longer than the MTU is counted and not forwarded (it would have been
// truncated); a read error is returned and costs no slot.
func TestLineOversizeAndReadError(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	l := NewLine(time.Millisecond, 1, 100)
	if err := l.Admit(readOf(make([]byte, 200)), clk); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := l.Admit(func([]byte) (int, error) { return 0, boom }, clk); err != boom {
		t.Fatalf("read error: got %v", err)
	}
	if err := l.Admit(readOf(make([]byte, 100)), clk); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Received != 2 || s.Oversize != 1 || s.Dropped != 0 || len(l.queue) != 1 {
		t.Errorf("stats %+v, queued %d", s, len(l.queue))
	}
}

// A failed write is counted, and its slot returns to the line.
func TestLineWriteError(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	l := NewLine(time.Millisecond, 1, 100)
	if err := l.Admit(readOf([]byte{1}), clk); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	l.Release(func([]byte) error { close(stop); return errors.New("EINVAL") }, clk, stop)
	if s := l.Stats(); s.WriteErrors != 1 || s.Forwarded != 0 || len(l.free) != 1 {
		t.Errorf("stats %+v, free %d", s, len(l.free))
	}
}
