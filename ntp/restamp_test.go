package ntp

import (
	"bytes"
	"net/netip"
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

// nopTable is a TxTable that keeps nothing, so every interleavable
// request is answered in basic mode with its reply kept (TxStamp).
type nopTable struct{}

func (nopTable) Take(Time64, netip.Addr) (Time64, bool) { return 0, false }
func (nopTable) Save(Time64, netip.Addr, Time64)        {}
func (nopTable) UpdateTx(Time64, Time64) bool           { return false }

// TestEdgeRestamps: with EdgeRestamps, a restampable reply reads no clock
// and carries its receive timestamp, rounded up to a transmit mark, until
// the edge's Restamp; every reply that is not restampable (an
// interleavable one, a kiss) is stamped as before, and without the flag
// nothing changes.
func TestEdgeRestamps(t *testing.T) {
	calls := 0
	r := testResponder()
	r.Now = func() time.Time { calls++; return testTx }
	r.EdgeRestamps = true
	reply, v := r.Respond(make([]byte, 0, 1024), clientRequest(4), testClient, testRx)
	h, _ := DecodeHeader(reply)
	if !v.Restampable() || calls != 0 || h.Transmit != h.Receive+1 || h.Transmit&1 != 0 {
		t.Fatalf("verdict %+v, %d clock reads, receive %#x transmit %#x", v, calls, h.Receive, h.Transmit)
	}
	r.Restamp(reply, testTx)
	if h, _ := DecodeHeader(reply); h.Transmit != Time64From(testTx.Add(250*time.Microsecond))&^1 {
		t.Fatalf("restamped transmit %#x", h.Transmit)
	}

	// An interleavable request: its reply's T3 is kept for the next one,
	// so Respond reads the clock.
	r.Interleave = nopTable{}
	req := (&Header{Version: 4, Mode: ModeClient, Origin: 0x1235, Receive: 7, Transmit: 9}).Append(nil)
	reply, v = r.Respond(make([]byte, 0, 1024), req, testClient, testRx)
	h, _ = DecodeHeader(reply)
	if v.Restampable() || !v.TxStamp || calls == 0 || h.Transmit != Time64From(testTx.Add(250*time.Microsecond))&^1 {
		t.Fatalf("interleavable: verdict %+v, %d clock reads, transmit %#x", v, calls, h.Transmit)
	}

	// Without the flag, a plain reply is stamped by Respond.
	calls = 0
	r = testResponder()
	r.Now = func() time.Time { calls++; return testTx }
	reply, _ = r.Respond(make([]byte, 0, 1024), clientRequest(4), testClient, testRx)
	if h, _ := DecodeHeader(reply); calls != 1 || h.Transmit != Time64From(testTx.Add(250*time.Microsecond))&^1 {
		t.Fatalf("without EdgeRestamps: %d clock reads, transmit %#x", calls, h.Transmit)
	}
}
