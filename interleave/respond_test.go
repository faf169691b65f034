package interleave

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/symkey"
)

// xlClient is the client side of chrony's interleaved exchange, as
// ntp_core.c's transmit_packet and receive_packet do it in client mode:
// each request carries as origin the receive timestamp of the previous
// reply, as receive timestamp a value of its own (chrony: its receive time
// of that reply), and a fresh transmit timestamp; a reply whose origin is
// that receive value is interleaved.
type xlClient struct {
	prevServerRx ntp.Time64 // receive timestamp of the last reply
	localRx      ntp.Time64
	nonce        ntp.Time64
	key          *symkey.Key // nil: plain
}

func (c *xlClient) request() []byte {
	c.nonce += 0x1_0000_0002
	c.localRx += 0x1_0000_0004
	h := ntp.Header{Version: 4, Mode: ntp.ModeClient, Poll: 6, Origin: c.prevServerRx, Receive: c.localRx, Transmit: c.nonce}
	req := h.Append(nil)
	if c.key != nil {
		req = binary.BigEndian.AppendUint32(req, c.key.ID())
		req = c.key.Sum(req, req[:ntp.HeaderLen])
	}
	return req
}

// reply checks the reply to req and returns whether it was interleaved and
// its transmit timestamp.
func (c *xlClient) reply(t *testing.T, req, reply []byte) (bool, ntp.Time64) {
	t.Helper()
	q, _ := ntp.DecodeHeader(req)
	h, err := ntp.DecodeHeader(reply)
	if err != nil {
		t.Fatal(err)
	}
	if h.Receive&1 != 1 || h.Transmit&1 != 0 {
		t.Fatalf("receive %#x / transmit %#x: the marks must be 1 and 0", h.Receive, h.Transmit)
	}
	c.prevServerRx = h.Receive
	switch h.Origin {
	case q.Transmit:
		return false, h.Transmit
	case q.Receive:
		return true, h.Transmit
	}
	t.Fatalf("origin %#x matches neither the request's transmit nor receive timestamp", h.Origin)
	return false, 0
}

type fakeNet struct {
	now time.Time
}

// TestRespondInterleaved runs chrony's client exchange against the
// responder with a real table: the first requests are answered in basic
// mode, from the third on each reply carries the previous reply's kernel
// transmit time, and that time is handed out only once and only to the
// client it was sent to.
func TestRespondInterleaved(t *testing.T) {
	key, err := symkey.NewKey(5, symkey.AES128CMAC, []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, keyed := range []bool{false, true} {
		tb := newTable(t, 64)
		n := &fakeNet{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
		st := &ntp.ServedState{Leap: ntp.LeapNone, Stratum: 2, RefID: 1, Precision: -20, Offset: 3 * time.Millisecond}
		r := &ntp.Responder{
			State:      func() *ntp.ServedState { return st },
			Now:        func() time.Time { return n.now },
			Keys:       func(id uint32) (ntp.MACKey, bool) { return key, id == 5 },
			Interleave: tb,
		}
		c := &xlClient{nonce: 0x5555_0000_0000_0000, localRx: 0x7777_0000_0000_0000}
		if keyed {
			c.key = key
		}
		from := netip.MustParseAddrPort("198.51.100.9:50000")
		var lastKernel time.Time
		for i := range 5 {
			req := c.request()
			rx := n.now
			n.now = n.now.Add(7 * time.Microsecond) // the daemon's reading
			reply, v := r.Respond(make([]byte, 0, 1024), req, from, rx)
			if v.Action != ntp.ActionReply || len(reply) != len(req) {
				t.Fatalf("keyed %v, request %d: verdict %+v, %d-octet reply", keyed, i, v, len(reply))
			}
			xl, tx := c.reply(t, req, reply)
			if xl != v.Interleaved {
				t.Errorf("request %d: verdict says interleaved %v, the reply %v", i, v.Interleaved, xl)
			}
			// Request 0 has origin 0 (nothing to ask for, nothing kept);
			// request 1 asks, finds nothing (0 was not kept), is kept;
			// from request 2 on every one is interleaved.
			if want := i >= 2; xl != want {
				t.Fatalf("keyed %v, request %d: interleaved %v, want %v", keyed, i, xl, want)
			}
			if want := i >= 1; v.TxStamp != want {
				t.Errorf("request %d: TxStamp %v, want %v", i, v.TxStamp, want)
			}
			if xl {
				want := ntp.Time64From(st.Serve(lastKernel)) &^ 1
				if d := int64(tx - want); d < -8 || d > 8 {
					t.Errorf("request %d: transmit %#x, want the previous reply's kernel time %#x", i, tx, want)
				}
			}
			// The kernel says the reply left 3 µs after the daemon's reading.
			lastKernel = n.now.Add(3 * time.Microsecond)
			if got := r.KernelTransmit(reply, lastKernel); got != v.TxStamp {
				t.Errorf("request %d: KernelTransmit = %v, want %v", i, got, v.TxStamp)
			}
			n.now = n.now.Add(time.Second)
		}

		// A replay of the last request: its entry was used, so basic mode.
		spoof := c.request()
		c.prevServerRx = 0
		replay := append([]byte(nil), spoof...)
		if _, v := r.Respond(make([]byte, 0, 1024), spoof, netip.MustParseAddrPort("203.0.113.5:123"), n.now); v.Interleaved {
			t.Error("a request from another address drew the client's transmit time")
		}
		if _, v := r.Respond(make([]byte, 0, 1024), replay, from, n.now); !v.Interleaved {
			t.Error("the client's own request was not interleaved after a foreign one asked for its entry")
		}
		if _, v := r.Respond(make([]byte, 0, 1024), replay, from, n.now); v.Interleaved {
			t.Error("a replayed request drew the same transmit time twice")
		}
	}
}

// A kiss, an NTPv3 request and a request whose receive and transmit
// timestamps are equal are never interleaved nor kept.
func TestRespondNotInterleavable(t *testing.T) {
	tb := newTable(t, 64)
	st := &ntp.ServedState{Leap: ntp.LeapNone, Stratum: 2, Precision: -20}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := &ntp.Responder{State: func() *ntp.ServedState { return st }, Now: func() time.Time { return now }, Interleave: tb}
	from := netip.MustParseAddrPort("198.51.100.9:50000")
	for name, h := range map[string]ntp.Header{
		"v3":          {Version: 3, Mode: ntp.ModeClient, Origin: 3, Receive: 4, Transmit: 5},
		"rx=tx":       {Version: 4, Mode: ntp.ModeClient, Origin: 3, Receive: 5, Transmit: 5},
		"origin even": {Version: 4, Mode: ntp.ModeClient, Origin: 2, Receive: 4, Transmit: 5},
	} {
		_, v := r.Respond(make([]byte, 0, 1024), h.Append(nil), from, now)
		if v.Action != ntp.ActionReply || v.TxStamp || v.Interleaved {
			t.Errorf("%s: verdict %+v", name, v)
		}
	}
	if tb.Len() != 0 {
		t.Errorf("%d entries kept", tb.Len())
	}
}

// The interleaved path allocates nothing either.
func TestRespondInterleavedAllocs(t *testing.T) {
	tb := newTable(t, 1024)
	st := &ntp.ServedState{Leap: ntp.LeapNone, Stratum: 2, Precision: -20}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := &ntp.Responder{State: func() *ntp.ServedState { return st }, Now: func() time.Time { return now }, Interleave: tb}
	from := netip.MustParseAddrPort("198.51.100.9:50000")
	c := &xlClient{nonce: 1, localRx: 2}
	out := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		req := c.request()
		reply, _ := r.Respond(out, req, from, now)
		h, _ := ntp.DecodeHeader(reply)
		c.prevServerRx = h.Receive
		r.KernelTransmit(reply, now.Add(time.Microsecond))
	})
	// c.request allocates its packet; the responder must add nothing.
	if allocs > 1 {
		t.Fatalf("%v allocations per exchange", allocs)
	}
}

// BenchmarkRespondInterleaved is the server path of an interleaved client:
// the table lookup, the interleaved reply, the entry for the next request
// and the kernel's transmit time, against BenchmarkRespondBasic (the same
// responder, a plain request that never touches the table).
func BenchmarkRespondInterleaved(b *testing.B) {
	tb := newTable(b, 8192)
	st := &ntp.ServedState{Leap: ntp.LeapNone, Stratum: 2, Precision: -20}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := &ntp.Responder{State: func() *ntp.ServedState { return st }, Now: func() time.Time { return now }, Interleave: tb}
	from := netip.MustParseAddrPort("198.51.100.9:50000")
	req := (&ntp.Header{Version: 4, Mode: ntp.ModeClient, Receive: 2, Transmit: 3}).Append(nil)
	out := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		reply, _ := r.Respond(out, req, from, now)
		r.KernelTransmit(reply, now.Add(time.Microsecond))
		copy(req[24:32], reply[32:40]) // the next request echoes this receive timestamp
	}
}

func BenchmarkRespondBasic(b *testing.B) {
	tb := newTable(b, 8192)
	st := &ntp.ServedState{Leap: ntp.LeapNone, Stratum: 2, Precision: -20}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := &ntp.Responder{State: func() *ntp.ServedState { return st }, Now: func() time.Time { return now }, Interleave: tb}
	from := netip.MustParseAddrPort("198.51.100.9:50000")
	req := (&ntp.Header{Version: 4, Mode: ntp.ModeClient, Transmit: 3}).Append(nil)
	out := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		r.Respond(out, req, from, now)
	}
}

// FuzzRespondInterleaved: whatever the request, with a table holding an
// entry for one client, the reply is never larger than the request, a
// reply is interleaved only for an NTPv4 request from that client whose
// origin names the entry, and then carries the entry's transmit time and
// the request's receive timestamp as origin; the entry serves once.
func FuzzRespondInterleaved(f *testing.F) {
	const rx = ntp.Time64(0xeb00_0000_1234_5679)
	const tx = rx + 0x4_0000
	f.Add((&ntp.Header{Version: 4, Mode: ntp.ModeClient, Origin: rx, Receive: 7, Transmit: 9}).Append(nil), true)
	f.Add((&ntp.Header{Version: 3, Mode: ntp.ModeClient, Origin: rx, Receive: 7, Transmit: 9}).Append(nil), true)
	f.Add((&ntp.Header{Version: 4, Mode: ntp.ModeSymmetricActive, Origin: rx, Receive: 7, Transmit: 9}).Append(nil), false)
	f.Add(append((&ntp.Header{Version: 4, Mode: ntp.ModeClient, Origin: rx, Receive: 7, Transmit: 9}).Append(nil), make([]byte, 20)...), true)
	owner := netip.MustParseAddrPort("198.51.100.9:50000")
	other := netip.MustParseAddrPort("203.0.113.1:123")
	f.Fuzz(func(t *testing.T, req []byte, fromOwner bool) {
		tb := newTable(t, 64)
		tb.Save(rx, owner.Addr(), tx)
		st := &ntp.ServedState{Leap: ntp.LeapNone, Stratum: 2, Precision: -20}
		now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
		r := &ntp.Responder{State: func() *ntp.ServedState { return st }, Now: func() time.Time { return now }, Interleave: tb}
		from := other
		if fromOwner {
			from = owner
		}
		for i := range 2 {
			reply, v := r.Respond(make([]byte, 0, 2048), req, from, now)
			if len(reply) > len(req) {
				t.Fatalf("%d-octet reply to a %d-octet request", len(reply), len(req))
			}
			if !v.Interleaved {
				continue
			}
			q, _ := ntp.DecodeHeader(req)
			h, _ := ntp.DecodeHeader(reply)
			if i > 0 || from != owner || q.Version != 4 || q.Origin != rx || h.Origin != q.Receive || h.Transmit>>txShift != tx>>txShift {
				t.Fatalf("try %d: interleaved reply %+v to %+v from %v", i, h, q, from)
			}
		}
		if tb.Len() > tb.Capacity() {
			t.Fatalf("%d entries in a table of %d", tb.Len(), tb.Capacity())
		}
	})
}
