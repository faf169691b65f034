package nts

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"timegate/ntp"
)

func TestNewClientSessionRejects(t *testing.T) {
	f := newNTSFixture(t)
	good := func() *KEResult { return f.ke(t, 2) }
	cases := []struct {
		name string
		mod  func(*KEResult)
		want error
	}{
		{"AES-SIV-CMAC-384", func(k *KEResult) { k.AEAD = 16 }, ErrUnsupportedAEAD},
		{"AES-128-GCM-SIV with 32-octet keys", func(k *KEResult) { k.AEAD = 30 }, ErrExport},
		{"short C2S", func(k *KEResult) { k.C2S = k.C2S[:16] }, ErrExport},
		{"long S2C", func(k *KEResult) { k.S2C = make([]byte, 48) }, ErrExport},
		{"no cookies", func(k *KEResult) { k.Cookies = nil }, ErrNoCookies},
		{"only unusable cookies", func(k *KEResult) { k.Cookies = [][]byte{nil, make([]byte, MaxCookieLen+1)} }, ErrNoCookies},
	}
	for _, c := range cases {
		k := good()
		c.mod(k)
		if _, err := NewClientSession(k); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestClientSessionCopiesCookies(t *testing.T) {
	f := newNTSFixture(t)
	k := f.ke(t, 12)
	s, err := NewClientSession(k)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cookies() != MaxCookies || s.CookieLen() != CookieSize {
		t.Fatalf("jar %d, cookie length %d", s.Cookies(), s.CookieLen())
	}
	k.Cookies[0][0] ^= 0xff // the caller's buffer is not the jar
	if bytes.Equal(s.jar[0], k.Cookies[0]) {
		t.Fatal("jar aliases the KE result")
	}
}

// TestBuildRequestUsesEachCookieOnce: every request carries a different
// cookie, asks for enough placeholders to refill the jar, and an empty jar
// is ErrNoCookies.
func TestBuildRequestUsesEachCookieOnce(t *testing.T) {
	f := newNTSFixture(t)
	s := f.session(t, MaxCookies)
	seen := map[string]bool{}
	for i := range MaxCookies {
		req, err := s.BuildRequest(nil, ntsNonce, testUID(), seeded(uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		p, err := ntp.Parse(req)
		if err != nil {
			t.Fatal(err)
		}
		var cookie []byte
		placeholders := 0
		it := p.ExtFields()
		for fl, ok := it.Next(); ok; fl, ok = it.Next() {
			switch fl.Type {
			case ntp.EFCookie:
				cookie = fl.Value
			case ntp.EFCookiePlaceholder:
				placeholders++
				if len(fl.Value) != CookieSize || !allZero(fl.Value) {
					t.Fatalf("placeholder of %d octets", len(fl.Value))
				}
			}
		}
		if seen[string(cookie)] {
			t.Fatal("cookie sent twice")
		}
		seen[string(cookie)] = true
		if placeholders != i || s.Cookies() != MaxCookies-1-i {
			t.Fatalf("request %d: %d placeholders, %d cookies left", i, placeholders, s.Cookies())
		}
	}
	if _, err := s.BuildRequest(nil, ntsNonce, testUID(), seeded(1)); !errors.Is(err, ErrNoCookies) {
		t.Fatalf("empty jar: %v", err)
	}
	if s.CookieLen() != 0 {
		t.Fatal("CookieLen of an empty jar")
	}
}

func TestBuildRequestErrors(t *testing.T) {
	f := newNTSFixture(t)
	s := f.session(t, 2)
	for _, n := range []int{0, 31, 257} {
		if _, err := s.BuildRequest(nil, ntsNonce, make([]byte, n), seeded(1)); !errors.Is(err, ErrUIDLength) {
			t.Errorf("UID of %d: %v", n, err)
		}
	}
	if _, err := s.BuildRequest(nil, ntsNonce, testUID(), bytes.NewReader(nil)); err == nil {
		t.Error("a failing rand built a request")
	}
	if s.Cookies() != 2 {
		t.Errorf("failed builds consumed cookies: %d left", s.Cookies())
	}
	prefix := []byte("prefix")
	req, err := s.BuildRequest(bytes.Clone(prefix), ntsNonce, testUID(), seeded(1))
	if err != nil || !bytes.HasPrefix(req, prefix) {
		t.Fatal(err)
	}
	// The associated data starts at the header, not at the buffer's start.
	if _, v := f.respond(req[len(prefix):]); v.Action != ntp.ActionReply {
		t.Fatalf("request built after a prefix: %+v", v)
	}
}

// TestBuildRequestStaysParseable: a long UID leaves room for fewer
// placeholders; the request stays within ntp.MaxPacketLen and is answered
// with the cookies it asks for.
func TestBuildRequestStaysParseable(t *testing.T) {
	f := newNTSFixture(t)
	s := f.session(t, 1)
	uid := bytes.Repeat([]byte{3}, maxUIDLen)
	req, err := s.BuildRequest(nil, ntsNonce, uid, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	// 48 + 260 + 108 + 40 = 456 octets fixed: room for 5 placeholders.
	if len(req) != 456+5*cookieFieldLen {
		t.Fatalf("request of %d octets", len(req))
	}
	reply, v := f.respond(req)
	if v.Action != ntp.ActionReply {
		t.Fatalf("verdict %+v", v)
	}
	if n, err := s.ProcessReply(reply, uid); err != nil || n != 6 {
		t.Fatalf("%d cookies, %v", n, err)
	}
}

// TestProcessReplyRejects: everything that is not an authentic reply to
// our request is an error, and no error leaves cookies in the jar.
func TestProcessReplyRejects(t *testing.T) {
	f := newNTSFixture(t)
	_, req := f.request(t, 6)
	reply, _ := f.respond(req)
	plain := ntp.AppendExtField(ntp.ClientRequest(nil, 4, 0, 1), ntp.EFUniqueIdentifier, testUID())
	plain[0] = 0x24 // mode 4
	kiss := ntp.KissHeader(&ntp.Header{Version: 4, Transmit: ntsNonce}, ntp.KissRATE)
	rateKiss := ntp.AppendExtField(kiss.Append(nil), ntp.EFUniqueIdentifier, testUID())
	noUID := appendTestAuth(ntp.ClientRequest(nil, 4, 0, 1), f.c2s, 16, 0, nil)
	cases := []struct {
		name  string
		reply []byte
		uid   []byte
		want  error
	}{
		{"other UID", reply, bytes.Repeat([]byte{7}, 32), ErrUIDMismatch},
		{"shorter UID", reply, testUID()[:31], ErrUIDMismatch},
		{"no UID", noUID, testUID(), ErrUIDMismatch},
		{"no authenticator", plain, testUID(), ErrUnauthenticated},
		{"unauthenticated RATE kiss", rateKiss, testUID(), ErrUnauthenticated},
		{"field after authenticator", append(bytes.Clone(reply), field(0x7777, make([]byte, 24))...), testUID(), ErrReplyMalformed},
		{"MAC trailer", append(bytes.Clone(reply), make([]byte, 20)...), testUID(), ErrReplyMalformed},
		{"truncated", reply[:len(reply)-4], testUID(), ErrReplyMalformed},
		{"request keys (C2S)", f.raw(rawRequest{fields: f.standardFields(t, 0)[:1]}), testUID(), ErrReplyAuth},
	}
	for _, c := range cases {
		s := f.session(t, 1)
		if n, err := s.ProcessReply(c.reply, c.uid); !errors.Is(err, c.want) || n != 0 || s.Cookies() != 1 {
			t.Errorf("%s: %d, %v; want %v", c.name, n, err, c.want)
		}
	}
}

// TestProcessReplyEveryBitFlip: no single-bit change of an authentic reply
// verifies.
func TestProcessReplyEveryBitFlip(t *testing.T) {
	f := newNTSFixture(t)
	_, req := f.request(t, 7)
	reply, _ := f.respond(req)
	s := f.session(t, 1)
	for bit := range len(reply) * 8 {
		mut := bytes.Clone(reply)
		mut[bit/8] ^= 1 << (bit % 8)
		if n, err := s.ProcessReply(mut, testUID()); err == nil || n != 0 {
			t.Fatalf("bit %d: flipped reply accepted (%d cookies)", bit, n)
		}
	}
	if s.Cookies() != 1 {
		t.Fatalf("jar %d", s.Cookies())
	}
}

// TestProcessReplyJarBounded: a reply never fills the jar past MaxCookies.
func TestProcessReplyJarBounded(t *testing.T) {
	f := newNTSFixture(t)
	_, req := f.request(t, 1) // asks for 8
	reply, _ := f.respond(req)
	s := f.session(t, 5)
	n, err := s.ProcessReply(reply, testUID())
	if err != nil || n != 3 || s.Cookies() != MaxCookies {
		t.Fatalf("%d, %v; jar %d", n, err, s.Cookies())
	}
}

// TestNTSRepeatedExchanges keeps one session going through many exchanges
// and a key rotation, as an upstream association would.
func TestNTSRepeatedExchanges(t *testing.T) {
	f := newNTSFixture(t)
	s := f.session(t, MaxCookies)
	for i := range 40 {
		if i == 20 {
			r, err := f.ring.Rotated(testEpoch.Add(time.Hour), seeded(30), 2)
			if err != nil {
				t.Fatal(err)
			}
			f.ring = r
		}
		req, err := s.BuildRequest(nil, ntsNonce, testUID(), seeded(uint64(100+i)))
		if err != nil {
			t.Fatal(err)
		}
		reply, v := f.respond(req)
		if v.Action != ntp.ActionReply {
			t.Fatalf("exchange %d: %+v", i, v)
		}
		if n, err := s.ProcessReply(reply, testUID()); err != nil || n != 1 || s.Cookies() != MaxCookies {
			t.Fatalf("exchange %d: %d, %v, jar %d", i, n, err, s.Cookies())
		}
	}
}
