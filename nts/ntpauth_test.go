package nts

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"timegate/ntp"
)

// TestNTSRoundTrip runs client → Responder with Server → client for every
// number of placeholders a client sends.
func TestNTSRoundTrip(t *testing.T) {
	f := newNTSFixture(t)
	for held := 1; held <= MaxCookies; held++ {
		placeholders := MaxCookies - held
		s, req := f.request(t, held)
		if s.Cookies() != held-1 {
			t.Fatalf("jar after BuildRequest: %d, want %d", s.Cookies(), held-1)
		}
		wantLen := ntp.HeaderLen + 36 + (1+placeholders)*cookieFieldLen + 40
		if len(req) != wantLen {
			t.Fatalf("%d placeholders: request %d octets, want %d", placeholders, len(req), wantLen)
		}
		reply, v := f.respond(req)
		if v.Action != ntp.ActionReply || v.Reason != ntp.ReasonOK || v.Auth != ntp.AuthNTS {
			t.Fatalf("%d placeholders: verdict %+v", placeholders, v)
		}
		if len(reply) != len(req) {
			t.Errorf("%d placeholders: reply %d octets, request %d", placeholders, len(reply), len(req))
		}
		smp, err := ntp.CheckReply(reply, 4, ntsNonce, ntsRx, ntsRx.Add(50*time.Microsecond))
		if err != nil || smp.Header.Stratum != 2 {
			t.Fatalf("CheckReply: %v %+v", err, smp.Header)
		}
		n, err := s.ProcessReply(reply, testUID())
		if err != nil || n != 1+placeholders || s.Cookies() != MaxCookies {
			t.Fatalf("%d placeholders: ProcessReply = %d, %v; jar %d", placeholders, n, err, s.Cookies())
		}
		for _, ck := range s.jar[held-1:] {
			got, err := f.ring.OpenCookie(ck)
			if err != nil || got != f.keys {
				t.Fatalf("new cookie does not open to the session keys: %v", err)
			}
		}
	}
}

// TestNTSFreshCookies: every cookie in every reply is new (distinct nonces).
func TestNTSFreshCookies(t *testing.T) {
	f := newNTSFixture(t)
	seen := map[string]bool{}
	for range 4 {
		_, req := f.request(t, 1)
		reply, _ := f.respond(req)
		for _, c := range f.replyCookies(t, reply) {
			if seen[string(c)] {
				t.Fatal("a cookie was issued twice")
			}
			seen[string(c)] = true
		}
	}
}

func TestNTSNAKForCookieOfDroppedKey(t *testing.T) {
	f := newNTSFixture(t)
	s, req := f.request(t, 3)
	// Two rotations keeping one key: the key that sealed the cookie is gone.
	for range 2 {
		r, err := f.ring.Rotated(testEpoch, seeded(20), 1)
		if err != nil {
			t.Fatal(err)
		}
		f.ring = r
	}
	reply, v := f.respond(req)
	if v.Action != ntp.ActionNTSNAK || v.Kiss != ntp.KissNTSN || v.Reason != ntp.ReasonBadCookie {
		t.Fatalf("verdict %+v", v)
	}
	checkNAK(t, reply, req)
	if _, err := s.ProcessReply(reply, testUID()); !errors.Is(err, ErrNTSNAK) {
		t.Fatalf("client: %v, want ErrNTSNAK", err)
	}
	if _, err := s.ProcessReply(reply, bytes.Repeat([]byte{1}, 32)); !errors.Is(err, ErrUIDMismatch) {
		t.Fatalf("NAK for another UID: %v, want ErrUIDMismatch", err)
	}
}

// checkNAK: a kiss header answering req, then the UID field, and nothing else.
func checkNAK(t *testing.T, reply, req []byte) {
	t.Helper()
	want := ntp.KissHeader(&ntp.Header{Version: 4, Mode: ntp.ModeClient, Transmit: ntsNonce}, ntp.KissNTSN)
	wantReply := ntp.AppendExtField(want.Append(nil), ntp.EFUniqueIdentifier, testUID())
	if !bytes.Equal(reply, wantReply) {
		t.Fatalf("NAK\n% x\nwant\n% x", reply, wantReply)
	}
	if len(reply) > len(req) {
		t.Fatalf("NAK %d octets > request %d", len(reply), len(req))
	}
}

func TestNTSNAKForForgedCookie(t *testing.T) {
	f := newNTSFixture(t)
	fs := f.standardFields(t, 0)
	fs[1][20] ^= 1 // inside the cookie's nonce: the tag fails
	reply, v := f.respond(f.raw(rawRequest{fields: fs}))
	if v.Action != ntp.ActionNTSNAK {
		t.Fatalf("verdict %+v", v)
	}
	checkNAK(t, reply, f.raw(rawRequest{fields: fs}))
}

// TestNTSEveryBitFlip flips each bit of valid requests: outside the cookie
// the request is dropped; inside it, it is dropped or NAKed; never is it
// answered with time.
func TestNTSEveryBitFlip(t *testing.T) {
	f := newNTSFixture(t)
	for _, held := range []int{8, 6} {
		_, req := f.request(t, held)
		if _, v := f.respond(req); v.Action != ntp.ActionReply {
			t.Fatalf("unmodified request: %+v", v)
		}
		cookieStart := ntp.HeaderLen + 36 + 4
		for bit := range len(req) * 8 {
			mut := bytes.Clone(req)
			mut[bit/8] ^= 1 << (bit % 8)
			reply, v := f.respond(mut)
			inCookie := bit/8 >= cookieStart && bit/8 < cookieStart+CookieSize
			switch {
			case v.Action == ntp.ActionDrop && reply == nil:
			case v.Action == ntp.ActionNTSNAK && inCookie:
			default:
				t.Fatalf("bit %d (octet %d): verdict %+v, %d-octet reply", bit, bit/8, v, len(reply))
			}
		}
	}
}

func TestNTSMalformedDropped(t *testing.T) {
	f := newNTSFixture(t)
	std := func(n int) [][]byte { return f.standardFields(t, n) }
	uid, cookie := std(0)[0], std(0)[1]
	unknown := field(0x7777, make([]byte, 24)) // 28 octets: may end a packet (RFC 7822 §7.5)
	small := make([]byte, 12)                  // a cookie that does not open: shape errors must win
	with := func(extra ...[]byte) [][]byte { return append(std(0), extra...) }
	cases := []struct {
		name string
		r    rawRequest
	}{
		{"no UID", rawRequest{fields: [][]byte{cookie}}},
		{"no cookie", rawRequest{fields: [][]byte{uid}}},
		{"no authenticator", rawRequest{fields: std(0), noAuth: true}},
		{"two UIDs", rawRequest{fields: with(uid)}},
		{"two cookies", rawRequest{fields: with(cookie)}},
		{"UID of 28 octets", rawRequest{fields: [][]byte{field(ntp.EFUniqueIdentifier, make([]byte, 28)), cookie}}},
		{"UID of 260 octets", rawRequest{fields: [][]byte{field(ntp.EFUniqueIdentifier, make([]byte, 260)), cookie}}},
		{"8 placeholders", rawRequest{fields: append([][]byte{uid, field(ntp.EFCookie, small)}, slices.Repeat([][]byte{field(ntp.EFCookiePlaceholder, small)}, 8)...)}},
		{"placeholder shorter than cookie", rawRequest{fields: with(field(ntp.EFCookiePlaceholder, make([]byte, CookieSize-4)))}},
		{"placeholder longer than cookie", rawRequest{fields: with(field(ntp.EFCookiePlaceholder, make([]byte, CookieSize+4)))}},
		{"placeholder before a longer cookie", rawRequest{fields: [][]byte{uid, field(ntp.EFCookiePlaceholder, make([]byte, 12)), cookie}}},
		{"cookie over MaxCookieLen", rawRequest{fields: [][]byte{uid, field(ntp.EFCookie, make([]byte, MaxCookieLen+4))}}},
		{"field after authenticator", rawRequest{fields: std(0), after: unknown}},
		{"authenticator twice", rawRequest{fields: std(0), after: appendTestAuth(nil, f.c2s, 16, 0, nil)}},
		{"MAC trailer after authenticator", rawRequest{fields: std(0), after: make([]byte, 20)}},
		{"nonce of 8 without padding", rawRequest{fields: std(0), nonceLen: 8}},
		{"nonce of 12 without padding", rawRequest{fields: std(0), nonceLen: 12}},
		{"encrypted placeholder of wrong length", rawRequest{fields: std(0), plaintext: field(ntp.EFCookiePlaceholder, make([]byte, 12))}},
		{"encrypted fields malformed", rawRequest{fields: std(0), plaintext: []byte{0, 1, 0, 6, 0, 0, 0, 0}}},
		{"encrypted fields truncated", rawRequest{fields: std(0), plaintext: []byte{0, 1, 0}}},
	}
	for _, c := range cases {
		req := f.raw(c.r)
		reply, v := f.respond(req)
		if v.Action != ntp.ActionDrop || reply != nil || v.Auth != ntp.AuthNTS || v.Reason != ntp.ReasonBadNTS {
			t.Errorf("%s: verdict %+v, %d-octet reply", c.name, v, len(reply))
		}
	}
}

// TestNTSOpenCountsPlaceholders calls open directly with requests longer
// than ntp.Parse admits: with our 104-octet cookies more than 7
// placeholders cannot fit in 1024 octets, but the handler must not rely on
// that.
func TestNTSOpenCountsPlaceholders(t *testing.T) {
	f := newNTSFixture(t)
	srv := f.resp.NTS.(*Server)
	std := func(n int) [][]byte { return f.standardFields(t, n) }
	for name, r := range map[string]rawRequest{
		"8 placeholders":                 {fields: std(8)},
		"7 placeholders and 1 encrypted": {fields: std(7), plaintext: std(1)[2]},
	} {
		req := f.raw(r)
		fields := ntp.FindNTS(req[ntp.HeaderLen:])
		if _, got := srv.open(new(scratch), f.ring, req, &fields); got != ntp.ReasonBadNTS {
			t.Errorf("%s: %v", name, got)
		}
	}
	req := f.raw(rawRequest{fields: std(6), plaintext: std(1)[2]})
	fields := ntp.FindNTS(req[ntp.HeaderLen:])
	if st, got := srv.open(new(scratch), f.ring, req, &fields); got != ntp.ReasonOK || st.cookies != MaxCookies {
		t.Errorf("6+1 placeholders: %v, %d cookies", got, st.cookies)
	}
}

// TestNTSAccepted: shapes that are unusual but valid get an authenticated
// reply carrying the cookies asked for, no longer than the request.
func TestNTSAccepted(t *testing.T) {
	f := newNTSFixture(t)
	std := func(n int) [][]byte { return f.standardFields(t, n) }
	ph := std(1)[2]
	unknown := field(0x7777, make([]byte, 40))
	cases := []struct {
		name    string
		r       rawRequest
		cookies int
	}{
		{"standard", rawRequest{fields: std(2)}, 3},
		{"unknown field first", rawRequest{fields: append([][]byte{unknown}, std(0)...)}, 1},
		{"unknown field before authenticator", rawRequest{fields: append(std(1), unknown)}, 2},
		{"placeholder before cookie", rawRequest{fields: [][]byte{std(0)[0], ph, std(0)[1]}}, 2},
		{"placeholder content ignored", rawRequest{fields: append(std(0), field(ntp.EFCookiePlaceholder, bytes.Repeat([]byte{9}, CookieSize)))}, 2},
		{"UID of 64 octets", rawRequest{fields: [][]byte{field(ntp.EFUniqueIdentifier, make([]byte, 64)), std(0)[1]}}, 1},
		{"nonce of 1 with padding", rawRequest{fields: std(0), nonceLen: 1, extraPad: 12}, 1},
		{"nonce of 8 with padding", rawRequest{fields: std(0), nonceLen: 8, extraPad: 8}, 1},
		{"nonce of 32", rawRequest{fields: std(0), nonceLen: 32}, 1},
		{"encrypted placeholders", rawRequest{fields: std(1), plaintext: append(bytes.Clone(ph), ph...)}, 4},
		{"encrypted unknown field", rawRequest{fields: std(0), plaintext: []byte{0x12, 0x34, 0, 4}}, 1},
	}
	for _, c := range cases {
		req := f.raw(c.r)
		reply, v := f.respond(req)
		if v.Action != ntp.ActionReply {
			t.Errorf("%s: verdict %+v", c.name, v)
			continue
		}
		if len(reply) != len(req) {
			t.Errorf("%s: reply %d octets, request %d", c.name, len(reply), len(req))
		}
		if c.name == "UID of 64 octets" {
			continue // the test client checks the 32-octet test UID
		}
		if got := len(f.replyCookies(t, reply)); got != c.cookies {
			t.Errorf("%s: %d cookies, want %d", c.name, got, c.cookies)
		}
	}
}

// TestNTSFewerCookiesWhenShort: a reply buffer smaller than the request
// gets fewer cookies, never a longer reply; no room for one gets nothing.
func TestNTSFewerCookiesWhenShort(t *testing.T) {
	f := newNTSFixture(t)
	_, req := f.request(t, 1) // 7 placeholders: 8 cookies asked
	base := ntp.HeaderLen + 36 + authFieldLen(0)
	for want := 8; want >= 1; want-- {
		size := base + want*cookieFieldLen + 3 // a little slack, not a multiple of 4
		reply, v := f.resp.Respond(make([]byte, 0, size), req, ntsClient, ntsRx)
		if v.Action != ntp.ActionReply || len(reply) > size {
			t.Fatalf("cap %d: verdict %+v, reply %d", size, v, len(reply))
		}
		if got := len(f.replyCookies(t, reply)); got != want {
			t.Fatalf("cap %d: %d cookies, want %d", size, got, want)
		}
	}
	reply, v := f.resp.Respond(make([]byte, 0, base+cookieFieldLen-4), req, ntsClient, ntsRx)
	if reply != nil || v.Action != ntp.ActionDrop || v.Reason != ntp.ReasonNoRoom {
		t.Fatalf("no room for a cookie: verdict %+v, reply %d", v, len(reply))
	}
}

// TestNTSKissIsAuthenticated: a rate-limit kiss to an NTS request carries
// the authenticator, so the client can believe it (RFC 8915 §5.7).
func TestNTSKissIsAuthenticated(t *testing.T) {
	f := newNTSFixture(t)
	f.resp.Gate = kissGate{}
	s, req := f.request(t, 8)
	reply, v := f.respond(req)
	if v.Action != ntp.ActionKoD || v.Kiss != ntp.KissRATE {
		t.Fatalf("verdict %+v", v)
	}
	if _, err := s.ProcessReply(reply, testUID()); err != nil {
		t.Fatalf("kiss does not verify: %v", err)
	}
	if _, err := ntp.CheckReply(reply, 4, ntsNonce, ntsRx, ntsRx); !errors.Is(err, ntp.ErrKiss) {
		t.Fatalf("CheckReply: %v", err)
	}
}

type kissGate struct{}

func (kissGate) Admit(netip.Addr, time.Time, ntp.AuthKind) ntp.Admission {
	return ntp.Admission{Action: ntp.ActionKoD, Kiss: ntp.KissRATE, Reason: ntp.ReasonRateLimited}
}

func TestNTSServerWithoutRing(t *testing.T) {
	f := newNTSFixture(t)
	f.resp.NTS = &Server{Ring: func() *KeyRing { return nil }}
	_, req := f.request(t, 8)
	if reply, v := f.respond(req); reply != nil || v.Reason != ntp.ReasonNTSDisabled {
		t.Fatalf("verdict %+v", v)
	}
}

func TestParseAuthenticator(t *testing.T) {
	auth := func(nl, cl int, body ...byte) []byte {
		return append([]byte{byte(nl >> 8), byte(nl), byte(cl >> 8), byte(cl)}, body...)
	}
	z := func(n int) []byte { return make([]byte, n) }
	cases := []struct {
		name string
		v    []byte
		ok   bool
	}{
		{"16+16", auth(16, 16, z(32)...), true},
		{"16+16 padded", auth(16, 16, z(64)...), true},
		{"1+16 padded to N_REQ", auth(1, 16, z(32)...), true},
		{"1+16 short of N_REQ", auth(1, 16, z(28)...), false},
		{"empty", nil, false},
		{"lengths only", auth(0, 0), false},
		{"zero nonce", auth(0, 16, z(32)...), false},
		{"ciphertext shorter than tag", auth(16, 15, z(32)...), false},
		{"nonce past the field", auth(40, 16, z(32)...), false},
		{"ciphertext past the field", auth(16, 17, z(32)...), false},
		{"huge lengths", auth(0xffff, 0xffff, z(32)...), false},
		{"nonzero nonce padding", auth(15, 16, append(z(15), append([]byte{1}, z(16)...)...)...), false},
		{"nonzero additional padding", auth(16, 16, append(z(32), 0, 0, 0, 1)...), false},
	}
	for _, c := range cases {
		if _, _, ok := parseAuthenticator(c.v, minNonceArea); ok != c.ok {
			t.Errorf("%s: ok = %v", c.name, ok)
		}
	}
}
