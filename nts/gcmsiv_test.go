package nts

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"timegate/ntp"
)

// AEAD 30 end to end with the Go client: NTS-KE over TLS offering 30 and 15
// gets 30 (the server's default preference) with 16-octet keys and 72-octet
// cookies; a request built by ClientSession is answered by the responder
// with a reply no longer than the request, which the session authenticates,
// taking 72-octet cookies; tampering with either packet breaks it.
func TestGCMSIVEndToEnd(t *testing.T) {
	s := startKEServer(t, ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := Exchange(ctx, nil, s.addr, s.clientConf(), DefaultAEADs())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.result(t); err != nil {
		t.Fatalf("server: %v", err)
	}
	if res.AEAD != AEADAES128GCMSIV || len(res.C2S) != 16 || len(res.S2C) != 16 || len(res.Cookies) != MaxCookies ||
		len(res.Cookies[0]) != CookieSizeGCMSIV {
		t.Fatalf("AEAD %d, keys %d/%d, %d cookies of %d octets", res.AEAD, len(res.C2S), len(res.S2C), len(res.Cookies), len(res.Cookies[0]))
	}
	sess, err := NewClientSession(res)
	if err != nil {
		t.Fatal(err)
	}
	st := &ntp.ServedState{Stratum: 2, RefID: 0xc0000201, Precision: -20}
	resp := &ntp.Responder{
		State: func() *ntp.ServedState { return st },
		NTS:   &Server{Ring: func() *KeyRing { return s.ring }, Rand: seeded(21)},
	}
	uid := bytes.Repeat([]byte{0x5a}, 32)
	for i := range 3 {
		req, err := sess.BuildRequest(nil, ntp.Time64(0x1122334455667788+uint64(i)), uid, seeded(uint64(30+i)))
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(req)
		bad[len(bad)-20] ^= 1
		if reply, _ := resp.Respond(make([]byte, 0, len(bad)), bad, ntsClient, ntsRx); reply != nil {
			t.Fatal("a request with a flipped ciphertext bit was answered")
		}
		reply, v := resp.Respond(make([]byte, 0, len(req)), req, ntsClient, ntsRx)
		if reply == nil || len(reply) > len(req) {
			t.Fatalf("request %d (%d octets): reply %d octets, verdict %+v", i, len(req), len(reply), v)
		}
		tampered := bytes.Clone(reply)
		tampered[ntp.HeaderLen-1] ^= 1 // the transmit timestamp
		if _, err := sess.ProcessReply(tampered, uid); !errors.Is(err, ErrReplyAuth) {
			t.Fatalf("tampered reply: %v", err)
		}
		before := sess.Cookies()
		added, err := sess.ProcessReply(reply, uid)
		if err != nil || added == 0 || sess.Cookies() != before+added || sess.CookieLen() != CookieSizeGCMSIV {
			t.Fatalf("reply %d: added %d, %v, jar %d of %d octets", i, added, err, sess.Cookies(), sess.CookieLen())
		}
	}
}

// An AEAD 30 request whose Authenticator nonce is not 12 octets is dropped,
// never handed to AES-GCM-SIV (which accepts no other length).
func TestGCMSIVNonceLength(t *testing.T) {
	f := newNTSFixture(t)
	c := Cookie{AEAD: AEADAES128GCMSIV}
	copy(c.C2S[:16], f.keys.C2S[:16])
	copy(c.S2C[:16], f.keys.S2C[:16])
	cookie, err := f.ring.SealCookie(nil, c, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	// An AEAD 15 session's request (16-octet nonce) carrying the AEAD 30
	// cookie: well formed, but the nonce is wrong for the cookie's AEAD.
	ke := &KEResult{AEAD: AEADAESSIVCMAC256, C2S: f.keys.C2S[:], S2C: f.keys.S2C[:], Cookies: [][]byte{cookie}}
	sess, err := NewClientSession(ke)
	if err != nil {
		t.Fatal(err)
	}
	req, err := sess.BuildRequest(nil, 1, bytes.Repeat([]byte{1}, 32), seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	if reply, v := f.resp.Respond(make([]byte, 0, len(req)), req, ntsClient, ntsRx); reply != nil || v.Reason != ntp.ReasonBadNTS {
		t.Fatalf("reply %d octets, verdict %+v", len(reply), v)
	}
}

// BenchmarkRespondNTSGCMSIV is BenchmarkRespondNTS (cookies=1) with AEAD 30.
func BenchmarkRespondNTSGCMSIV(b *testing.B) {
	fx := newNTSFixture(b)
	c := Cookie{AEAD: AEADAES128GCMSIV}
	copy(c.C2S[:16], fx.keys.C2S[:16])
	copy(c.S2C[:16], fx.keys.S2C[:16])
	var cookies [][]byte
	for i := range MaxCookies {
		ck, err := fx.ring.SealCookie(nil, c, seeded(uint64(60+i)))
		if err != nil {
			b.Fatal(err)
		}
		cookies = append(cookies, ck)
	}
	sess, err := NewClientSession(&KEResult{AEAD: AEADAES128GCMSIV, C2S: c.C2S[:16], S2C: c.S2C[:16], Cookies: cookies})
	if err != nil {
		b.Fatal(err)
	}
	var t3 time.Time
	fx.resp.Now = func() time.Time { t3 = time.Now(); return t3 }
	req, err := sess.BuildRequest(nil, 1, bytes.Repeat([]byte{1}, 32), seeded(70))
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, ntp.MaxPacketLen)
	var after time.Duration
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		reply, v := fx.resp.Respond(dst, req, ntsClient, ntsRx)
		after += time.Since(t3)
		if v.Action != ntp.ActionReply || len(reply) != len(req) {
			b.Fatalf("verdict %+v", v)
		}
	}
	b.ReportMetric(float64(after.Nanoseconds())/float64(b.N), "after-T3-ns/op")
}
