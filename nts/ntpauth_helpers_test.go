package nts

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/siv"
)

var (
	ntsRx     = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ntsClient = netip.MustParseAddrPort("192.0.2.9:40123")
	ntsNonce  = ntp.Time64(0x0123456789abcdef)
)

// ntsFixture is a server (responder + NTS handler over a fixed ring) and the
// keys a client got from NTS-KE: everything is deterministic.
type ntsFixture struct {
	ring *KeyRing
	keys Cookie
	resp *ntp.Responder
	c2s  *siv.AEAD
}

func newNTSFixture(t testing.TB) *ntsFixture {
	t.Helper()
	f := &ntsFixture{ring: testRing(t, 11), keys: testCookie(7)}
	st := &ntp.ServedState{Stratum: 2, RefID: 0xc0000201, Precision: -20, Offset: time.Millisecond}
	f.resp = &ntp.Responder{
		State: func() *ntp.ServedState { return st },
		Now:   func() time.Time { return ntsRx.Add(20 * time.Microsecond) },
		NTS:   &Server{Ring: func() *KeyRing { return f.ring }, Rand: seeded(12)},
	}
	var err error
	if f.c2s, err = siv.New(f.keys.C2S[:]); err != nil {
		t.Fatal(err)
	}
	return f
}

// ke returns what NTS-KE would have given a client: the keys and n cookies
// sealed by the fixture's ring.
func (f *ntsFixture) ke(t testing.TB, n int) *KEResult {
	t.Helper()
	res := &KEResult{AEAD: AEADAESSIVCMAC256, C2S: f.keys.C2S[:], S2C: f.keys.S2C[:]}
	rnd := seeded(13)
	for range n {
		c, err := f.ring.SealCookie(nil, f.keys, rnd)
		if err != nil {
			t.Fatal(err)
		}
		res.Cookies = append(res.Cookies, c)
	}
	return res
}

func (f *ntsFixture) session(t testing.TB, n int) *ClientSession {
	t.Helper()
	s, err := NewClientSession(f.ke(t, n))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request builds a standard request from a session holding n cookies: it
// carries 8−n placeholders, asking to refill the jar.
func (f *ntsFixture) request(t testing.TB, n int) (*ClientSession, []byte) {
	t.Helper()
	s := f.session(t, n)
	req, err := s.BuildRequest(nil, ntsNonce, testUID(), seeded(14))
	if err != nil {
		t.Fatal(err)
	}
	return s, req
}

func (f *ntsFixture) respond(req []byte) ([]byte, ntp.Verdict) {
	return f.resp.Respond(make([]byte, 0, ntp.MaxPacketLen), req, ntsClient, ntsRx)
}

func testUID() []byte {
	uid := make([]byte, 32)
	for i := range uid {
		uid[i] = byte(0xa0 + i)
	}
	return uid
}

// rawRequest describes a request field by field, so tests can build shapes
// BuildRequest never would, with a correct authenticator over them.
type rawRequest struct {
	fields    [][]byte // framed fields before the authenticator
	nonceLen  int      // 0 means 16
	extraPad  int      // Additional Padding octets
	plaintext []byte   // encrypted extension fields
	after     []byte   // anything appended after the authenticator
	noAuth    bool
}

func (f *ntsFixture) raw(r rawRequest) []byte {
	b := ntp.ClientRequest(nil, 4, 0, ntsNonce)
	for _, fl := range r.fields {
		b = append(b, fl...)
	}
	if !r.noAuth {
		b = appendTestAuth(b, f.c2s, r.nonceLen, r.extraPad, r.plaintext)
	}
	return append(b, r.after...)
}

// appendTestAuth writes an Authenticator independently of authWriter, so
// the server's parser is checked against a second encoder.
func appendTestAuth(b []byte, a *siv.AEAD, nonceLen, extraPad int, plaintext []byte) []byte {
	if nonceLen == 0 {
		nonceLen = 16
	}
	nonce := bytes.Repeat([]byte{0x5a}, nonceLen)
	ct := a.Seal(nil, nonce, plaintext, b)
	v := binary.BigEndian.AppendUint16(nil, uint16(nonceLen))
	v = binary.BigEndian.AppendUint16(v, uint16(len(ct)))
	v = append(v, nonce...)
	v = append(v, make([]byte, pad4(nonceLen)-nonceLen)...)
	v = append(v, ct...)
	v = append(v, make([]byte, pad4(len(ct))-len(ct)+extraPad)...)
	b = binary.BigEndian.AppendUint16(b, ntp.EFAuthenticator)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(v)))
	return append(b, v...)
}

func field(typ uint16, value []byte) []byte { return ntp.AppendExtField(nil, typ, value) }

// standardFields are UID, cookie and n placeholders of the cookie's length.
func (f *ntsFixture) standardFields(t testing.TB, n int) [][]byte {
	t.Helper()
	c, err := f.ring.SealCookie(nil, f.keys, seeded(15))
	if err != nil {
		t.Fatal(err)
	}
	fs := [][]byte{field(ntp.EFUniqueIdentifier, testUID()), field(ntp.EFCookie, c)}
	for range n {
		fs = append(fs, field(ntp.EFCookiePlaceholder, make([]byte, len(c))))
	}
	return fs
}

// replyCookies decrypts an authenticated reply with S2C and returns its
// New Cookie values, or fails the test.
func (f *ntsFixture) replyCookies(t testing.TB, reply []byte) [][]byte {
	t.Helper()
	s := f.session(t, 1)
	s.jar = nil
	n, err := s.ProcessReply(reply, testUID())
	if err != nil {
		t.Fatalf("reply does not verify: %v", err)
	}
	if n != len(s.jar) {
		t.Fatalf("ProcessReply says %d, jar has %d", n, len(s.jar))
	}
	return s.jar
}
