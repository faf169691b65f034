package upstream

import "time"

// Action is what a Source asks its edge to do. The edge owns sockets and timers; the
// Source only decides (DESIGN.md: "Upstream sources are state machines that return
// actions"). The concrete types are Send, WakeAfter, Rekey and Demobilize.
type Action interface{ action() }

// Send asks the edge to send Packet to the source's NTP address from a fresh socket with
// a random source port (RFC 9109 §3: a port per request makes an off-path attacker guess
// 16 more bits), to wait at most Timeout for answers on it, hand every datagram received
// to HandleResponse together with the time the packet left, and close the socket after
// the answer or the timeout.
type Send struct {
	Packet  []byte
	Timeout time.Duration
}

// WakeAfter asks the edge to call HandleTimer after D. It replaces any earlier wake-up
// the source asked for: a source has one timer.
type WakeAfter struct{ D time.Duration }

// Rekey asks the edge for a new NTS-KE session (RFC 8915 §4) and to report its outcome
// with HandleRekey. The source sends nothing until then: an NTS source never falls back
// to plain NTP.
type Rekey struct{}

// Demobilize says the source stopped for good (a DENY or RSTR kiss, RFC 5905 §7.4): the
// edge releases its timer and reports Reason to the operator.
type Demobilize struct{ Reason string }

func (Send) action()       {}
func (WakeAfter) action()  {}
func (Rekey) action()      {}
func (Demobilize) action() {}
