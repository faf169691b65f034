package metrics

import (
	"net"
	"testing"
	"time"
)

// TestLimitListener: with one slot, a second connection is accepted only
// once the first is closed, and Close wakes an Accept waiting for a slot.
func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(raw, 1)
	accepted := make(chan net.Conn)
	errs := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				errs <- err
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	first := <-accepted
	dial() // waits in the backlog
	select {
	case <-accepted:
		t.Fatal("second connection accepted while the only slot is taken")
	case <-time.After(100 * time.Millisecond):
	}
	first.Close()
	first.Close() // a second Close must not free a second slot
	second := <-accepted
	dial()
	select {
	case <-accepted:
		t.Fatal("a double Close freed two slots")
	case <-time.After(100 * time.Millisecond):
	}
	ln.Close()
	if err := <-errs; err == nil {
		t.Fatal("Accept returned no error after Close")
	}
	second.Close()
}
