package nts

import (
	"bytes"
	"testing"
)

// FuzzRespondGCMSIV wraps fuzzed changes in a valid AEAD 30 request (built
// by ClientSession against the fixture's ring): one byte XORed at any
// position, and the request cut short. Properties: the responder never
// panics and never answers with more octets than the request; an unchanged
// request gets a reply the session authenticates; a changed one never does
// (every octet is covered by the AEAD, is a cookie that then fails to open
// and earns only an unauthenticated NAK, or is padding that must be zero).
func FuzzRespondGCMSIV(f *testing.F) {
	fx := newNTSFixture(f)
	c := Cookie{AEAD: AEADAES128GCMSIV}
	copy(c.C2S[:16], fx.keys.C2S[:16])
	copy(c.S2C[:16], fx.keys.S2C[:16])
	var cookies [][]byte
	for i := range 2 {
		ck, err := fx.ring.SealCookie(nil, c, seeded(uint64(40+i)))
		if err != nil {
			f.Fatal(err)
		}
		cookies = append(cookies, ck)
	}
	ke := &KEResult{AEAD: AEADAES128GCMSIV, C2S: c.C2S[:16], S2C: c.S2C[:16], Cookies: cookies}
	uid := bytes.Repeat([]byte{0xa7}, 32)
	f.Add(uint16(0), uint8(0), uint16(0))
	f.Add(uint16(60), uint8(1), uint16(0))
	f.Add(uint16(200), uint8(0x80), uint16(0))
	f.Add(uint16(0), uint8(0), uint16(13))
	f.Fuzz(func(t *testing.T, pos uint16, xor uint8, cut uint16) {
		sess, err := NewClientSession(ke)
		if err != nil {
			t.Fatal(err)
		}
		req, err := sess.BuildRequest(nil, 0x0102030405060708, uid, seeded(50))
		if err != nil {
			t.Fatal(err)
		}
		changed := false
		if xor != 0 {
			req[int(pos)%len(req)] ^= xor
			changed = true
		}
		if n := int(cut) % 64; n > 0 {
			req = req[:len(req)-n]
			changed = true
		}
		reply, _ := fx.resp.Respond(make([]byte, 0, len(req)), req, ntsClient, ntsRx)
		if len(reply) > len(req) {
			t.Fatalf("reply %d octets > request %d", len(reply), len(req))
		}
		_, err = sess.ProcessReply(reply, uid)
		if !changed && err != nil {
			t.Fatalf("unchanged request: %v", err)
		}
		if changed && reply != nil && err == nil {
			t.Fatalf("a changed request (pos %d xor %#x cut %d) got an authentic reply", pos, xor, cut)
		}
	})
}
