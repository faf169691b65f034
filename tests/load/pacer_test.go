package main

import (
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	p := Pacer{Rate: 1000}
	tests := []struct {
		elapsed time.Duration
		sent    uint64
		want    int
	}{
		{0, 0, 0},
		{time.Millisecond, 0, 1},
		{10 * time.Millisecond, 3, 7},
		{10 * time.Millisecond, 10, 0},
		{10 * time.Millisecond, 20, 0}, // ahead: nothing
		{time.Second, 0, 32},           // far behind: one batch at a time
	}
	for _, tt := range tests {
		if got := p.Due(tt.elapsed, tt.sent, 32); got != tt.want {
			t.Errorf("Due(%v, %d) = %d, want %d", tt.elapsed, tt.sent, got, tt.want)
		}
	}
	if got := p.NextAt(0); got != time.Millisecond {
		t.Errorf("NextAt(0) = %v", got)
	}
	if got := p.NextAt(999); got != time.Second {
		t.Errorf("NextAt(999) = %v", got)
	}
	// Walking the pacer through simulated time sends Rate per second.
	var sent uint64
	for el := time.Duration(0); el <= 2*time.Second; el += 300 * time.Microsecond {
		sent += uint64(p.Due(el, sent, 32))
	}
	if sent < 1999 || sent > 2000 {
		t.Errorf("2 s at 1000/s sent %d", sent)
	}
	max := Pacer{}
	if max.Due(0, 1e9, 32) != 32 || max.NextAt(5) != 0 {
		t.Error("rate 0 must always send a full batch")
	}
}
