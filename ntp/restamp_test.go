package ntp

import (
	"bytes"
	"testing"
	"time"
)

// A plain reply's T3 may be written again just before the send: only the
// transmit timestamp changes, to the served time of the later reading,
// with the low bit that marks transmit timestamps clear.
func TestRestampPlainReply(t *testing.T) {
	r := testResponder()
	reply, v := r.Respond(make([]byte, 0, 1024), clientRequest(4), testClient, testRx)
	if !v.Restampable() {
		t.Fatalf("plain basic reply not restampable: %+v", v)
	}
	before := bytes.Clone(reply)
	later := testTx.Add(3 * time.Microsecond)
	r.Restamp(reply, later)
	h, _ := DecodeHeader(reply)
	want := Time64From(later.Add(250*time.Microsecond)) &^ 1
	if h.Transmit != want {
		t.Fatalf("transmit %#x, want %#x", h.Transmit, want)
	}
	if !bytes.Equal(reply[:40], before[:40]) || len(reply) != len(before) {
		t.Fatal("restamping changed more than the transmit timestamp")
	}
	r.Restamp(reply[:10], later) // too short: left alone, no panic
}

// What a MAC, an NTS authenticator, a kiss or interleaved mode covers must
// never be restamped.
func TestRestampable(t *testing.T) {
	for _, c := range []struct {
		v    Verdict
		want bool
	}{
		{Verdict{Action: ActionReply}, true},
		{Verdict{Action: ActionReply, Leak: true}, true},
		{Verdict{Action: ActionReply, Auth: AuthKey}, false},
		{Verdict{Action: ActionReply, Auth: AuthNTS}, false},
		{Verdict{Action: ActionKoD}, false},
		{Verdict{Action: ActionNTSNAK}, false},
		{Verdict{Action: ActionDrop}, false},
		{Verdict{Action: ActionReply, TxStamp: true}, false},
		{Verdict{Action: ActionReply, Interleaved: true}, false},
	} {
		if got := c.v.Restampable(); got != c.want {
			t.Errorf("%+v: Restampable %v, want %v", c.v, got, c.want)
		}
	}
}
