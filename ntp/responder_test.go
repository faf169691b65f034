package ntp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

var (
	testRx     = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	testTx     = testRx.Add(30 * time.Microsecond)
	testClient = netip.MustParseAddrPort("192.0.2.7:40123")
)

func testResponder() *Responder {
	st := &ServedState{
		Leap: LeapNone, Stratum: 3, RefID: 0xc0000201, Precision: -22,
		RootDelay: 2 * time.Millisecond, RootDispersion: 5 * time.Millisecond,
		RefTime: testRx.Add(-10 * time.Second), Offset: 250 * time.Microsecond,
	}
	return &Responder{
		State: func() *ServedState { return st },
		Now:   func() time.Time { return testTx },
	}
}

func clientRequest(version uint8) []byte {
	h := Header{Version: version, Mode: ModeClient, Poll: 6, Transmit: Time64From(testRx.Add(-time.Millisecond)) | 0x1234}
	return h.Append(nil)
}

func TestRespondPlain(t *testing.T) {
	r := testResponder()
	for _, vn := range []uint8{1, 2, 3, 4} {
		req := clientRequest(vn)
		reply, v := r.Respond(make([]byte, 0, 1024), req, testClient, testRx)
		if v.Action != ActionReply || v.Reason != ReasonOK || v.Auth != AuthNone {
			t.Fatalf("v%d: verdict %+v", vn, v)
		}
		h, _ := DecodeHeader(reply)
		reqH, _ := DecodeHeader(req)
		if h.Mode != ModeServer || h.Version != vn || h.Stratum != 3 || h.Leap != LeapNone ||
			h.RefID != 0xc0000201 || h.Poll != 6 || h.Precision != -22 {
			t.Errorf("v%d: reply header %+v", vn, h)
		}
		if h.Origin != reqH.Transmit {
			t.Errorf("origin %#x, want the request transmit %#x", h.Origin, reqH.Transmit)
		}
		if got := h.Receive.Time(testRx); got.Sub(testRx.Add(250*time.Microsecond)).Abs() > time.Microsecond {
			t.Errorf("receive = %v", got)
		}
		if got := h.Transmit.Time(testRx); got.Sub(testTx.Add(250*time.Microsecond)).Abs() > time.Microsecond {
			t.Errorf("transmit = %v", got)
		}
		if len(reply) > len(req) {
			t.Errorf("reply %d > request %d", len(reply), len(req))
		}
	}
}

func TestRespondNeverAnswers(t *testing.T) {
	r := testResponder()
	withByte0 := func(b0 byte) []byte { req := clientRequest(4); req[0] = b0; return req }
	cases := []struct {
		name   string
		req    []byte
		client netip.AddrPort
		reason Reason
	}{
		{"empty", nil, testClient, ReasonShort},
		{"47 bytes", clientRequest(4)[:47], testClient, ReasonShort},
		{"version 0", withByte0(0<<3 | 3), testClient, ReasonVersion},
		{"version 5", withByte0(5<<3 | 3), testClient, ReasonVersion},
		{"version 7", withByte0(7<<3 | 3), testClient, ReasonVersion},
		{"source port 0", clientRequest(4), netip.MustParseAddrPort("192.0.2.7:0"), ReasonSourcePort},
		{"bad EF framing", append(clientRequest(4), 0, 1, 0, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), testClient, ReasonFraming},
		{"crypto-NAK trailer", append(clientRequest(4), 0, 0, 0, 0), testClient, ReasonFraming},
		{"keyed without keys", append(clientRequest(4), make([]byte, 20)...), testClient, ReasonUnknownKey},
		{"NTS without NTS", AppendExtField(clientRequest(4), EFUniqueIdentifier, make([]byte, 32)), testClient, ReasonNTSDisabled},
		{"oversized", append(clientRequest(4), make([]byte, 2000)...), testClient, ReasonFraming},
	}
	for _, m := range []Mode{0, 2, 4, 5, 6, 7} {
		cases = append(cases, struct {
			name   string
			req    []byte
			client netip.AddrPort
			reason Reason
		}{"mode " + string('0'+byte(m)), withByte0(4<<3 | byte(m)), testClient, ReasonMode})
	}
	for _, c := range cases {
		reply, v := r.Respond(make([]byte, 0, 4096), c.req, c.client, testRx)
		if reply != nil || v.Action != ActionDrop || v.Reason != c.reason {
			t.Errorf("%s: reply %d bytes, verdict %+v, want drop/%v", c.name, len(reply), v, c.reason)
		}
	}
}

func TestRespondUnsynchronised(t *testing.T) {
	st := Unsynchronised(-20)
	r := &Responder{State: func() *ServedState { return st }}
	reply, v := r.Respond(make([]byte, 0, 48), clientRequest(4), testClient, testRx)
	h, _ := DecodeHeader(reply)
	if v.Action != ActionReply || h.Leap != LeapUnsync || h.Stratum != 16 {
		t.Fatalf("verdict %+v header %+v", v, h)
	}
}

func TestRespondRespectsDstCapacity(t *testing.T) {
	r := testResponder()
	reply, v := r.Respond(make([]byte, 0, 40), clientRequest(4), testClient, testRx)
	if reply != nil || v.Reason != ReasonNoRoom {
		t.Fatalf("reply into a 40-byte buffer: %d bytes, %+v", len(reply), v)
	}
}

// gateFunc adapts a function to Gate.
type gateFunc func(netip.Addr, time.Time, AuthKind) Admission

func (g gateFunc) Admit(a netip.Addr, now time.Time, k AuthKind) Admission { return g(a, now, k) }

func TestRespondGate(t *testing.T) {
	r := testResponder()
	var seen netip.Addr
	r.Gate = gateFunc(func(a netip.Addr, _ time.Time, _ AuthKind) Admission {
		seen = a
		return Admission{Action: ActionKoD, Kiss: KissRATE, Reason: ReasonRateLimited}
	})
	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:192.0.2.7"), 123)
	req := clientRequest(4)
	reply, v := r.Respond(make([]byte, 0, 48), req, mapped, testRx)
	if seen != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("gate saw %v, want the unmapped IPv4 address", seen)
	}
	h, _ := DecodeHeader(reply)
	reqH, _ := DecodeHeader(req)
	if v.Action != ActionKoD || v.Kiss != KissRATE || h.Stratum != 0 || h.RefID != uint32(KissRATE) ||
		h.Origin != reqH.Transmit || h.Transmit != 0 || h.Leap != LeapUnsync {
		t.Fatalf("kiss verdict %+v header %+v", v, h)
	}
	if code, ok := IsKiss(&h); !ok || code.String() != "RATE" {
		t.Errorf("IsKiss = %v %v", code, ok)
	}
	r.Gate = gateFunc(func(netip.Addr, time.Time, AuthKind) Admission {
		return Admission{Action: ActionDrop, Reason: ReasonPolicy}
	})
	if reply, v := r.Respond(make([]byte, 0, 48), req, testClient, testRx); reply != nil || v.Reason != ReasonPolicy {
		t.Errorf("policy drop: %d bytes %+v", len(reply), v)
	}
}

// hmacKey is a stand-in MAC for the responder's keyed path; the real RFC
// 8573 keys live in package symkey.
type hmacKey []byte

func (k hmacKey) MACLen(uint8) int { return 16 }
func (k hmacKey) SumTrunc(dst, msg []byte, n int) []byte {
	return k.Sum(dst, msg)[:len(dst)+n]
}
func (k hmacKey) Sum(dst, msg []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write(msg)
	return append(dst, m.Sum(nil)[:16]...)
}
func (k hmacKey) Verify(msg, mac []byte) bool { return hmac.Equal(k.Sum(nil, msg), mac) }

func TestRespondKeyed(t *testing.T) {
	r := testResponder()
	key := hmacKey("secret")
	r.Keys = func(id uint32) (MACKey, bool) { return key, id == 7 }
	req := clientRequest(4)
	req = append(req, 0, 0, 0, 7)
	req = key.Sum(req, req[:HeaderLen])
	reply, v := r.Respond(make([]byte, 0, 1024), req, testClient, testRx)
	if v.Action != ActionReply || v.Auth != AuthKey || len(reply) != len(req) {
		t.Fatalf("keyed verdict %+v, reply %d bytes", v, len(reply))
	}
	if !bytes.Equal(reply[48:52], []byte{0, 0, 0, 7}) || !key.Verify(reply[:48], reply[52:]) {
		t.Fatal("reply MAC does not verify under the request's key")
	}
	bad := append([]byte{}, req...)
	bad[60] ^= 1
	if reply, v := r.Respond(make([]byte, 0, 1024), bad, testClient, testRx); reply != nil || v.Reason != ReasonBadMAC {
		t.Errorf("bad MAC: %d bytes %+v", len(reply), v)
	}
	unknown := append([]byte{}, req...)
	unknown[51] = 8
	if reply, v := r.Respond(make([]byte, 0, 1024), unknown, testClient, testRx); reply != nil || v.Reason != ReasonUnknownKey {
		t.Errorf("unknown key: %d bytes %+v", len(reply), v)
	}
}

// Chrony's server tests push tens of thousands of random requests through the
// server path; this does the same for the invariants every reply must keep.
func TestRespondRandomRequests(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	r := testResponder()
	buf := make([]byte, 0, 2048)
	for range 50000 {
		req := make([]byte, rng.IntN(200))
		for i := range req {
			req[i] = byte(rng.Uint32())
		}
		if len(req) > 0 && rng.IntN(2) == 0 {
			req[0] = byte(rng.IntN(4))<<6 | byte(1+rng.IntN(4))<<3 | 3
		}
		checkReply(t, r, buf, req)
	}
}

func checkReply(t *testing.T, r *Responder, buf, req []byte) {
	t.Helper()
	reply, v := r.Respond(buf, req, testClient, testRx)
	if len(reply) > len(req) {
		t.Fatalf("reply %d bytes > request %d bytes", len(reply), len(req))
	}
	if (reply == nil) != (v.Action == ActionDrop) {
		t.Fatalf("verdict %+v with %d-byte reply", v, len(reply))
	}
	if reply == nil {
		return
	}
	h, _ := DecodeHeader(reply)
	reqH, _ := DecodeHeader(req)
	okMode := (reqH.Mode == ModeClient && h.Mode == ModeServer) ||
		(reqH.Mode == ModeSymmetricActive && h.Mode == ModeSymmetricPassive)
	if !okMode || h.Origin != reqH.Transmit || h.Version != reqH.Version {
		t.Fatalf("answered %+v with %+v", reqH, h)
	}
	if v.Auth != AuthNone {
		t.Fatalf("unauthenticated responder produced auth %v", v.Auth)
	}
}

func FuzzRespond(f *testing.F) {
	f.Add(clientRequest(4))
	f.Add(clientRequest(3))
	f.Add(append(clientRequest(4), make([]byte, 20)...))
	f.Add(AppendExtField(clientRequest(4), 0x2005, make([]byte, 40)))
	f.Add(AppendExtField(clientRequest(4), EFUniqueIdentifier, make([]byte, 32)))
	r := testResponder()
	buf := make([]byte, 0, 2048)
	f.Fuzz(func(t *testing.T, req []byte) {
		checkReply(t, r, buf, req)
	})
}

func BenchmarkRespond(b *testing.B) {
	r := testResponder()
	req := clientRequest(4)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if reply, _ := r.Respond(buf, req, testClient, testRx); reply == nil {
			b.Fatal("no reply")
		}
	}
}

// stampProbe is an NTSHandler that records what the responder hands to
// it and what Stamper.Stamp does with it.
type stampProbe struct {
	nowCalls                *int
	before, after           Time64 // transmit timestamp around tx.Stamp
	callsBefore, callsAfter int
	sealed                  bool
}

func (p *stampProbe) Respond(reply, req []byte, f NTSFields, limit int, tx Stamper) ([]byte, Reason) {
	hdr := reply[len(reply)-HeaderLen:]
	h, _ := DecodeHeader(hdr)
	p.before, p.callsBefore = h.Transmit, *p.nowCalls
	tx.Stamp(hdr)
	h, _ = DecodeHeader(hdr)
	p.after, p.callsAfter = h.Transmit, *p.nowCalls
	p.sealed = true
	return AppendExtField(reply, EFUniqueIdentifier, f.UID), ReasonOK
}

// TestRespondNTSStampsInSeal: an NTS reply's transmit timestamp is not
// read before the handler's Seal asks for it, so that the handler can do
// all work that does not depend on it first; the clock is read exactly
// once, at Stamp. A kiss gets no transmit timestamp and no clock reading.
func TestRespondNTSStampsInSeal(t *testing.T) {
	calls := 0
	r := testResponder()
	r.Now = func() time.Time { calls++; return testTx }
	probe := &stampProbe{nowCalls: &calls}
	r.NTS = probe
	req := AppendExtField(clientRequest(4), EFUniqueIdentifier, bytes.Repeat([]byte{7}, 32))
	reply, v := r.Respond(make([]byte, 0, 1024), req, testClient, testRx)
	if v.Action != ActionReply || v.Auth != AuthNTS || !probe.sealed || len(reply) != len(req) {
		t.Fatalf("verdict %+v, sealed %v, reply %d octets", v, probe.sealed, len(reply))
	}
	want := Time64From(testTx.Add(250*time.Microsecond)) &^ 1 // chrony's mark: transmit ends in 0
	if probe.before != 0 || probe.callsBefore != 0 {
		t.Errorf("Seal got a header with transmit %#x after %d clock readings; want none yet", probe.before, probe.callsBefore)
	}
	if probe.after != want || probe.callsAfter != 1 || calls != 1 {
		t.Errorf("after Stamp: transmit %#x (want %#x), %d readings during Seal, %d in all; want 1", probe.after, want, probe.callsAfter, calls)
	}
	if h, _ := DecodeHeader(reply); h.Transmit != want {
		t.Errorf("reply transmit %#x, want %#x", h.Transmit, want)
	}

	calls = 0
	*probe = stampProbe{nowCalls: &calls}
	r.Gate = gateFunc(func(netip.Addr, time.Time, AuthKind) Admission {
		return Admission{Action: ActionKoD, Kiss: KissRATE, Reason: ReasonRateLimited}
	})
	reply, v = r.Respond(make([]byte, 0, 1024), req, testClient, testRx)
	h, _ := DecodeHeader(reply)
	if v.Action != ActionKoD || !probe.sealed || probe.after != 0 || h.Transmit != 0 || calls != 0 {
		t.Errorf("kiss: verdict %+v, transmit %#x, %d clock readings; want a zero timestamp and none", v, h.Transmit, calls)
	}
}

// Campaign finding: a request from 255.255.255.255 was answered to the
// broadcast address. Requests from broadcast, multicast or unspecified
// sources are forged and dropped before any other work.
func TestRespondDropsNonUnicastSources(t *testing.T) {
	r := testResponder()
	for _, src := range []string{
		"255.255.255.255:123", "0.0.0.0:123", "224.0.1.1:123", "239.255.255.250:5000",
		"[::]:123", "[ff02::101]:123", "[ff05::1]:123", "[::ffff:255.255.255.255]:123", "[::ffff:224.0.0.1]:123",
	} {
		reply, v := r.Respond(make([]byte, 0, 1024), clientRequest(4), netip.MustParseAddrPort(src), testRx)
		if reply != nil || v.Action != ActionDrop || v.Reason != ReasonSourceAddr {
			t.Errorf("%s: reply %d bytes, verdict %+v, want drop/source-addr", src, len(reply), v)
		}
	}
	for _, src := range []string{"192.0.2.255:123", "10.255.255.255:123", "[2001:db8::1]:123"} {
		if reply, v := r.Respond(make([]byte, 0, 1024), clientRequest(4), netip.MustParseAddrPort(src), testRx); reply == nil {
			t.Errorf("%s: unicast source dropped: %+v", src, v)
		}
	}
}

// RespondLead moves the transmit timestamp of basic replies, plain and
// keyed (whose MAC covers it), by the lead, and leaves a kiss's zero and an
// interleaved reply's kernel stamp alone.
func TestRespondLead(t *testing.T) {
	const lead = 1800 * time.Nanosecond
	r := testResponder()
	key := hmacKey("secret")
	r.Keys = func(id uint32) (MACKey, bool) { return key, id == 7 }
	keyed := append(clientRequest(4), 0, 0, 0, 7)
	keyed = key.Sum(keyed, keyed[:HeaderLen])
	for name, req := range map[string][]byte{"plain": clientRequest(4), "keyed": keyed} {
		base, _ := r.Respond(make([]byte, 0, 1024), req, testClient, testRx)
		moved, v := r.RespondLead(make([]byte, 0, 1024), req, testClient, testRx, lead)
		if v.Action != ActionReply {
			t.Fatalf("%s: verdict %+v", name, v)
		}
		b, _ := DecodeHeader(base)
		m, _ := DecodeHeader(moved)
		if d := m.Transmit.Time(testRx).Sub(b.Transmit.Time(testRx)); (d - lead).Abs() > 2*time.Nanosecond {
			t.Errorf("%s: transmit moved by %v, want %v", name, d, lead)
		}
		if m.Receive != b.Receive {
			t.Errorf("%s: the receive timestamp moved", name)
		}
		if name == "keyed" && !key.Verify(moved[:48], moved[52:]) {
			t.Errorf("keyed: the MAC does not cover the moved transmit timestamp")
		}
	}
	r.Gate = gateFunc(func(netip.Addr, time.Time, AuthKind) Admission {
		return Admission{Action: ActionKoD, Kiss: KissRATE}
	})
	kiss, v := r.RespondLead(make([]byte, 0, 1024), clientRequest(4), testClient, testRx, lead)
	if v.Action != ActionKoD {
		t.Fatalf("kiss verdict %+v", v)
	}
	if h, _ := DecodeHeader(kiss); h.Transmit != 0 {
		t.Errorf("a kiss's transmit timestamp %#x, want 0", h.Transmit)
	}
}

// TestUnicastSourceMatchesNetip: the octet-level check agrees with netip's
// predicates on the edges (unspecified, multicast, limited broadcast, in
// both families and IPv4-mapped) and on random addresses dense in the
// ranges that matter (a seeded loop; the seed is logged).
func TestUnicastSourceMatchesNetip(t *testing.T) {
	ref := func(a netip.Addr) bool {
		a = a.Unmap()
		limitedBroadcast := a.Is4() && a.As4() == [4]byte{255, 255, 255, 255}
		return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && !limitedBroadcast
	}
	addrs := []netip.Addr{{}}
	for _, s := range []string{"0.0.0.0", "255.255.255.255", "224.0.0.1", "239.255.255.255", "223.255.255.255", "240.0.0.0",
		"192.0.2.1", "127.0.0.1", "::", "::1", "ff02::1", "fe80::1", "2001:db8::1", "::ffff:0.0.0.0", "::ffff:224.0.0.1",
		"::ffff:255.255.255.255", "::ffff:192.0.2.1", "::192.0.2.1", "::ffff:0:0:1", "feff::1"} {
		addrs = append(addrs, netip.MustParseAddr(s))
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	for range 20000 {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		switch rng.IntN(4) {
		case 0:
			addrs = append(addrs, netip.AddrFrom4([4]byte(b[:4])))
		case 1:
			copy(b[:12], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
			addrs = append(addrs, netip.AddrFrom16(b))
		case 2:
			b[0] = 0xff - byte(rng.IntN(2))
			addrs = append(addrs, netip.AddrFrom16(b))
		default:
			addrs = append(addrs, netip.AddrFrom16(b))
		}
	}
	for _, a := range addrs {
		if got, want := unicastSource(a), ref(a); got != want {
			t.Errorf("%v: unicastSource %v, netip says %v", a, got, want)
		}
	}
}
