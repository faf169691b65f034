package ntp

import (
	"net/netip"
	"os"
	"testing"
	"time"
)

// Golden captures of chronyd 4.3 (Debian bookworm) as a client; see
// testdata/README.md for how they were made (tests/capture, build tag
// capture). They are replayed here without chrony installed.

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenClient is a client address as the gateway would see it: the reply
// does not depend on it, but a port of 0 would be refused.
var goldenClient = netip.MustParseAddrPort("127.0.0.1:41123")

// chronyd 4.3's plain client request: a bare NTPv4 header, and the reply
// the gateway gives it.
func TestGoldenChronyClientRequest(t *testing.T) {
	req := readGolden(t, "chrony-4.3-client-request.bin")
	p, err := Parse(req)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	h := p.Header
	if len(req) != HeaderLen || h.Version != 4 || h.Mode != ModeClient || p.NumFields != 0 || p.MAC != nil {
		t.Fatalf("%d bytes, header %+v, %d fields, MAC %x: want a bare NTPv4 mode-3 header", len(req), h, p.NumFields, p.MAC)
	}
	// RFC 9109 §3 (data minimisation): chrony sends a random transmit
	// timestamp as its nonce, and its clock nowhere else.
	if h.Transmit == 0 {
		t.Error("transmit timestamp is zero; chrony sends a random one")
	}
	if h.Origin != 0 || h.Receive != 0 || h.RefTime != 0 || h.Stratum != 0 || h.RefID != 0 {
		t.Errorf("header %+v: chrony 4.3 leaves origin, receive, reference time, stratum and refid zero", h)
	}

	rx := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tx := rx.Add(20 * time.Microsecond)
	st := &ServedState{Leap: LeapNone, Stratum: 4, RefID: 0x7f7f0101, Precision: -20, RefTime: rx.Add(-time.Minute)}
	r := &Responder{State: func() *ServedState { return st }, Now: func() time.Time { return tx }}
	reply, v := r.Respond(make([]byte, 0, MaxPacketLen), req, goldenClient, rx)
	if v.Action != ActionReply || v.Reason != ReasonOK || v.Auth != AuthNone {
		t.Fatalf("verdict %+v", v)
	}
	if len(reply) != len(req) {
		t.Fatalf("reply is %d bytes, request %d", len(reply), len(req))
	}
	s, err := CheckReply(reply, 4, h.Transmit, rx, tx)
	if err != nil {
		t.Fatalf("CheckReply: %v", err)
	}
	if s.Header.Origin != h.Transmit || s.Header.Stratum != 4 || s.Header.Receive != Time64From(rx)|1 || s.Header.Transmit != Time64From(tx)&^1 {
		t.Errorf("reply header %+v", s.Header)
	}
}

// The reply that chronyd 4.3 accepted (it selected the source): a server
// reply to the captured request.
func TestGoldenChronyClientReply(t *testing.T) {
	req := readGolden(t, "chrony-4.3-client-request.bin")
	reply := readGolden(t, "chrony-4.3-client-reply.bin")
	q, err := DecodeHeader(req)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(reply)
	if err != nil {
		t.Fatal(err)
	}
	t2 := p.Header.Receive.Time(time.Now())
	if _, err := CheckReply(reply, 4, q.Transmit, t2, p.Header.Transmit.Time(t2)); err != nil || len(reply) != len(req) {
		t.Fatalf("CheckReply: %v; %d-byte reply to %d-byte request", err, len(reply), len(req))
	}
}
