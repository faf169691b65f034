package main

import "time"

// Pacer spreads requests evenly at Rate per second from the start of a run;
// a Rate of 0 sends as fast as possible. It keeps no state: the caller
// passes the time elapsed and the count sent so far, so a late sender
// catches up in bursts of at most the caller's batch size.
type Pacer struct{ Rate float64 }

// Due returns how many requests should be sent now, at most batch.
func (p Pacer) Due(elapsed time.Duration, sent uint64, batch int) int {
	if p.Rate <= 0 {
		return batch
	}
	want := uint64(elapsed.Seconds() * p.Rate)
	if want <= sent {
		return 0
	}
	return int(min(want-sent, uint64(batch)))
}

// NextAt returns the elapsed time at which request number sent is due.
func (p Pacer) NextAt(sent uint64) time.Duration {
	if p.Rate <= 0 {
		return 0
	}
	return time.Duration(float64(sent+1) / p.Rate * float64(time.Second))
}
