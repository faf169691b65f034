package nts

import (
	"bytes"
	"net/netip"
	"os"
	"testing"
	"time"

	"timegate/ntp"
)

// Golden captures of chronyd 4.3 (Debian bookworm) as an NTS client, with
// the key ring that sealed its cookies; see testdata/README.md for how they
// were made (tests/capture, build tag capture). They are replayed here
// without chrony installed.

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func goldenRing(t *testing.T) *KeyRing {
	t.Helper()
	ring, err := UnmarshalKeyRing(readGolden(t, "chrony-4.3-ring.bin"))
	if err != nil {
		t.Fatalf("UnmarshalKeyRing: %v", err)
	}
	return ring
}

var goldenClient = netip.MustParseAddrPort("127.0.0.1:41123")

// goldenNTS describes one captured request: what chrony put in it.
type goldenNTS struct {
	request, reply string
	placeholders   int // Cookie Placeholders chrony sent: 8 − cookies left − 1
}

var goldenNTSCaptures = []goldenNTS{
	// The first request after NTS-KE: chrony holds 8 cookies, spends one,
	// and asks for one back (the reply's cookie), so no placeholder.
	{"chrony-4.3-nts-request.bin", "chrony-4.3-nts-reply.bin", 0},
	// The request after one whose reply was lost: chrony asks for the
	// missing cookie too.
	{"chrony-4.3-nts-placeholder-request.bin", "chrony-4.3-nts-placeholder-reply.bin", 1},
}

// chronyFields is the layout of a chrony request: UID, Cookie, placeholders,
// Authenticator, in that order and nothing else.
type chronyFields struct {
	uid, cookie  []byte
	placeholders [][]byte
	auth         bool
}

func parseChronyRequest(t *testing.T, req []byte) (ntp.Packet, chronyFields) {
	t.Helper()
	p, err := ntp.Parse(req)
	if err != nil {
		t.Fatalf("ntp.Parse: %v", err)
	}
	if p.Header.Version != 4 || p.Header.Mode != ntp.ModeClient || p.MAC != nil {
		t.Fatalf("header %+v, MAC %x: want NTPv4 mode 3 and no MAC", p.Header, p.MAC)
	}
	var f chronyFields
	want := ntp.EFUniqueIdentifier
	it := p.ExtFields()
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		if f.auth {
			t.Fatalf("field %#x after the Authenticator", e.Type)
		}
		switch {
		case e.Type == ntp.EFUniqueIdentifier && want == ntp.EFUniqueIdentifier:
			f.uid, want = e.Value, ntp.EFCookie
		case e.Type == ntp.EFCookie && want == ntp.EFCookie:
			f.cookie, want = e.Value, ntp.EFCookiePlaceholder
		case e.Type == ntp.EFCookiePlaceholder && want == ntp.EFCookiePlaceholder:
			f.placeholders = append(f.placeholders, e.Value)
		case e.Type == ntp.EFAuthenticator && want == ntp.EFCookiePlaceholder:
			f.auth = true
		default:
			t.Fatalf("field %#x at offset %d out of chrony's order", e.Type, e.Offset)
		}
	}
	if !f.auth {
		t.Fatal("no Authenticator")
	}
	return p, f
}

func goldenResponder(ring *KeyRing) *ntp.Responder {
	st := &ntp.ServedState{Stratum: 4, RefID: 0x7f7f0101, Precision: -20}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &ntp.Responder{
		State: func() *ntp.ServedState { return st },
		Now:   func() time.Time { return now },
		NTS:   &Server{Ring: func() *KeyRing { return ring }, Rand: seeded(42)},
	}
}

// checkGoldenReply authenticates reply with the keys of the cookie the
// request carried, as chrony does, and checks that it brings 1 +
// placeholders cookies, each opening with ring to the same keys.
func checkGoldenReply(t *testing.T, ring *KeyRing, keys Cookie, req []byte, f chronyFields, reply []byte) {
	t.Helper()
	q, _ := ntp.DecodeHeader(req)
	h, err := ntp.DecodeHeader(reply)
	if err != nil || h.Mode != ntp.ModeServer || h.Origin != q.Transmit || h.Stratum == 0 {
		t.Fatalf("reply header %+v (%v): want a server reply to the request", h, err)
	}
	if len(reply) != len(req) {
		t.Errorf("reply %d bytes, request %d", len(reply), len(req))
	}
	s, err := NewClientSession(&KEResult{AEAD: keys.AEAD, C2S: keys.C2S[:], S2C: keys.S2C[:], Cookies: [][]byte{f.cookie}})
	if err != nil {
		t.Fatal(err)
	}
	added, err := s.ProcessReply(reply, f.uid)
	if err != nil {
		t.Fatalf("ProcessReply: %v", err)
	}
	if added != 1+len(f.placeholders) {
		t.Errorf("reply brings %d cookies, want %d", added, 1+len(f.placeholders))
	}
	for i, c := range s.jar[1:] {
		got, err := ring.OpenCookie(c)
		if err != nil || got != keys {
			t.Errorf("new cookie %d: %v, or not the request's keys", i, err)
		}
	}
	bad := bytes.Clone(reply)
	bad[ntp.HeaderLen-1] ^= 1 // transmit timestamp
	if _, err := s.ProcessReply(bad, f.uid); err == nil {
		t.Error("reply with a flipped transmit bit still authenticates")
	}
}

// chrony's NTS requests open with the stored ring; the gateway answers each
// with a reply as long as the request, whose cookies open; the replies
// chrony accepted do too.
func TestGoldenChronyNTSRequest(t *testing.T) {
	ring := goldenRing(t)
	for _, g := range goldenNTSCaptures {
		t.Run(g.request, func(t *testing.T) {
			req := readGolden(t, g.request)
			p, f := parseChronyRequest(t, req)
			if len(f.uid) != 32 {
				t.Errorf("UID of %d octets; chrony 4.3 sends 32", len(f.uid))
			}
			if len(f.cookie) != CookieSize {
				t.Errorf("cookie of %d octets, want %d (ours)", len(f.cookie), CookieSize)
			}
			if len(f.placeholders) != g.placeholders {
				t.Errorf("%d placeholders, want %d", len(f.placeholders), g.placeholders)
			}
			for i, ph := range f.placeholders {
				if len(ph) != len(f.cookie) {
					t.Errorf("placeholder %d: %d octets, cookie %d (RFC 8915 §5.5: equal)", i, len(ph), len(f.cookie))
				}
			}
			if p.Header.Transmit == 0 || p.Header.Origin != 0 || p.Header.Receive != 0 {
				t.Errorf("header %+v: chrony sends a random transmit timestamp, zero origin and receive", p.Header)
			}

			keys, err := ring.OpenCookie(f.cookie)
			if err != nil || keys.AEAD != AEADAESSIVCMAC256 {
				t.Fatalf("OpenCookie: %v (AEAD %d)", err, keys.AEAD)
			}
			srv := &Server{Ring: func() *KeyRing { return ring }}
			st, reason := srv.open(new(scratch), ring, req, &p.NTS)
			if reason != ntp.ReasonOK {
				t.Fatalf("open: %v", reason)
			}
			if st.cookies != 1+g.placeholders || !bytes.Equal(st.uid, f.uid) || st.cookie != keys {
				t.Errorf("state: %d cookies, AEAD %d, UID %x", st.cookies, st.cookie.AEAD, st.uid)
			}

			reply, v := goldenResponder(ring).Respond(make([]byte, 0, ntp.MaxPacketLen), req, goldenClient, time.Now())
			if v.Action != ntp.ActionReply || v.Reason != ntp.ReasonOK || v.Auth != ntp.AuthNTS {
				t.Fatalf("verdict %+v", v)
			}
			checkGoldenReply(t, ring, keys, req, f, reply)
			t.Run("captured reply", func(t *testing.T) {
				checkGoldenReply(t, ring, keys, req, f, readGolden(t, g.reply))
			})
		})
	}
}

// No single-bit change of a chrony request earns an authenticated reply: a
// change in the cookie earns an NTS NAK (the cookie no longer opens), any
// other is dropped (the Authenticator covers everything before it).
func TestGoldenChronyNTSRequestBitFlips(t *testing.T) {
	ring := goldenRing(t)
	r := goldenResponder(ring)
	for _, g := range goldenNTSCaptures {
		req := readGolden(t, g.request)
		_, f := parseChronyRequest(t, req)
		cookieAt := bytes.Index(req, f.cookie)
		dst := make([]byte, 0, ntp.MaxPacketLen)
		if _, v := r.Respond(dst, req, goldenClient, time.Now()); v.Action != ntp.ActionReply {
			t.Fatalf("%s unchanged: verdict %+v", g.request, v)
		}
		for bit := range len(req) * 8 {
			bad := bytes.Clone(req)
			i := bit / 8
			bad[i] ^= 1 << (bit % 8)
			reply, v := r.Respond(dst, bad, goldenClient, time.Now())
			inCookie := i >= cookieAt && i < cookieAt+len(f.cookie)
			switch {
			case inCookie && (v.Action != ntp.ActionNTSNAK || v.Reason != ntp.ReasonBadCookie || reply == nil):
				t.Fatalf("%s: bit %d (in the cookie) flipped: verdict %+v, want an NTS NAK", g.request, bit, v)
			case !inCookie && (v.Action != ntp.ActionDrop || reply != nil):
				t.Fatalf("%s: bit %d flipped: verdict %+v, want a drop", g.request, bit, v)
			}
		}
	}
}

// chrony 4.3's NTS-KE request, as read inside TLS by the server: NTPv4,
// AEAD 15 only, End of Message, all critical. Negotiate grants AEAD 15 and 8
// cookies that open with the ring to the exported keys.
func TestGoldenChronyKERequest(t *testing.T) {
	raw := readGolden(t, "chrony-4.3-ke-request.bin")
	recs, err := ParseRequest(raw)
	if err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	if again, err := AppendMessage(nil, recs); err != nil || !bytes.Equal(again, raw) {
		t.Errorf("re-encoded %x (%v), captured %x", again, err, raw)
	}
	want := goodRequest() // NextProtocol(0), AEAD(15), EOM
	if len(recs) != len(want) {
		t.Fatalf("%d records %+v, want %+v", len(recs), recs, want)
	}
	for i := range want {
		if recs[i].Type != want[i].Type || recs[i].Critical != want[i].Critical || !bytes.Equal(recs[i].Body, want[i].Body) {
			t.Errorf("record %d: %+v, want %+v", i, recs[i], want[i])
		}
	}

	ring := goldenRing(t)
	fe := &fakeExporter{}
	resp, err := Negotiate(recs, fe.export, ring, seeded(3), NegotiateOptions{})
	if err != nil {
		t.Fatalf("Negotiate: %v", err)
	}
	var aead []Record
	for _, r := range resp {
		if r.Type == RecAEAD {
			aead = append(aead, r)
		}
	}
	if len(aead) != 1 || !bytes.Equal(aead[0].Body, []byte{0, 15}) {
		t.Errorf("AEAD records %+v, want one choosing 15", aead)
	}
	if n := countCookies(resp); n != 8 {
		t.Errorf("%d cookies, want 8", n)
	}
	c2s, s2c := exporterContext(ProtocolNTPv4, 15, 0), exporterContext(ProtocolNTPv4, 15, 1)
	checkGrantedCookies(t, resp, ring, fakeKey(c2s[:], KeyLen), fakeKey(s2c[:], KeyLen))
}
