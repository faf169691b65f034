package nts

import (
	"bytes"
	"testing"

	"timegate/ntp"
)

// Shape flags of FuzzRespondNTS: each makes the request invalid.
const (
	fuzzDupUID    = 1 << iota // a second Unique Identifier
	fuzzDupCookie             // a second Cookie
	fuzzDupAuth               // a second Authenticator after the first
	fuzzAfterAuth             // a field after the Authenticator
)

// FuzzRespondNTS wraps fuzzed content in a valid NTS envelope built with
// fixed keys and a fixed ring (structure-aware), optionally flips one octet,
// and checks what the server does:
//   - the reply is never longer than the request;
//   - a request with a flipped octet never gets an authenticated reply: at
//     most an NTS NAK, and only when the flip changed the cookie;
//   - an intact request gets an authenticated reply exactly when its shape
//     is valid, that reply verifies with the client's S2C, echoes the UID,
//     and carries 1 + placeholders cookies (no more than fit, no more than
//     8), each of which opens to the session keys.
func FuzzRespondNTS(f *testing.F) {
	fx := newNTSFixture(f)
	cookie := fx.standardFields(f, 0)[1]
	ph := field(ntp.EFCookiePlaceholder, make([]byte, CookieSize))
	f.Add(uint8(32), uint8(0), uint8(16), uint8(0), []byte(nil), []byte(nil), uint16(0), uint8(0))
	f.Add(uint8(32), uint8(7), uint8(16), uint8(0), []byte(nil), []byte(nil), uint16(0), uint8(0))
	f.Add(uint8(32), uint8(3), uint8(16), uint8(0), []byte(nil), []byte(nil), uint16(100), uint8(1))
	f.Add(uint8(32), uint8(1), uint8(16), uint8(0), []byte(nil), []byte(nil), uint16(100), uint8(0x80))
	f.Add(uint8(31), uint8(2), uint8(4), uint8(0), []byte("\x12\x34hello extension field"), ph, uint16(0), uint8(0))
	f.Add(uint8(64), uint8(0), uint8(1), uint8(0), []byte(nil), []byte{0x03, 0x04, 0x00, 0x08, 0, 0, 0, 0}, uint16(0), uint8(0))
	f.Add(uint8(40), uint8(8), uint8(16), uint8(0), []byte(nil), []byte(nil), uint16(0), uint8(0))
	f.Add(uint8(16), uint8(0), uint8(16), uint8(fuzzDupUID), []byte(nil), []byte(nil), uint16(0), uint8(0))
	f.Add(uint8(32), uint8(0), uint8(16), uint8(fuzzAfterAuth|fuzzDupAuth), []byte(nil), []byte(nil), uint16(0), uint8(0))
	// Found by the fuzzer: a flip in the cookie field's length makes the
	// cookie swallow the placeholder after it; the shape stays valid, the
	// longer cookie does not open, and the answer is a NAK.
	f.Add(uint8(32), uint8(1), uint8(16), uint8(0), []byte("00000000000000"), []byte(nil), uint16(87), uint8(0x80))
	f.Fuzz(func(t *testing.T, uidLen, placeholders, nonceLen, flags uint8, extra, plaintext []byte, mutPos uint16, mutXor uint8) {
		placeholders %= 10
		flags &= fuzzAfterAuth<<1 - 1
		nonceLen = nonceLen%40 + 1
		if len(extra) > 300 || len(plaintext) > 300 {
			return
		}
		uid := bytes.Repeat([]byte{0xc5}, int(uidLen))
		fields := [][]byte{field(ntp.EFUniqueIdentifier, uid), cookie}
		for range placeholders {
			fields = append(fields, ph)
		}
		if len(extra) > 0 {
			// Never an NTS type: duplicates come from flags.
			fields = append(fields, field(0x2000|uint16(extra[0]), extra[1:]))
		}
		if flags&fuzzDupUID != 0 {
			fields = append(fields, fields[0])
		}
		if flags&fuzzDupCookie != 0 {
			fields = append(fields, cookie)
		}
		var after []byte
		if flags&fuzzDupAuth != 0 {
			after = appendTestAuth(after, fx.c2s, 16, 0, nil)
		}
		if flags&fuzzAfterAuth != 0 {
			after = append(after, field(0x2000, make([]byte, 24))...)
		}
		extraPad := max(0, minNonceArea-pad4(int(nonceLen)))
		req := fx.raw(rawRequest{fields: fields, nonceLen: int(nonceLen), extraPad: extraPad, plaintext: plaintext, after: after})
		valid, cookies := fuzzExpect(req, len(uid), int(placeholders), flags, plaintext)
		mutated := mutXor != 0
		if mutated {
			req[int(mutPos)%len(req)] ^= mutXor
		}
		reply, v := fx.respond(req)
		if len(reply) > len(req) {
			t.Fatalf("reply %d octets > request %d", len(reply), len(req))
		}
		switch {
		case mutated:
			checkMutatedVerdict(t, req, reply, v, int(mutPos)%len(req), len(uid))
		case valid != (v.Action == ntp.ActionReply):
			t.Fatalf("valid shape %v, verdict %+v", valid, v)
		case valid:
			checkFuzzReply(t, fx, reply, uid, cookies)
		}
	})
}

// fuzzExpect says, independently of scanRequest, whether the unmutated
// request is valid and how many cookies its reply must carry.
func fuzzExpect(req []byte, uidLen, placeholders int, flags uint8, plaintext []byte) (bool, int) {
	uidValue := ntp.ExtFieldLen(uidLen) - efHeaderLen
	encrypted, ptOK := 0, true
	for rest := plaintext; len(rest) > 0 && ptOK; {
		n := 0
		if len(rest) >= 4 {
			n = int(rest[2])<<8 | int(rest[3])
		}
		if n < 4 || n%4 != 0 || n > len(rest) {
			ptOK = false
			break
		}
		if rest[0] == 0x03 && rest[1] == 0x04 {
			encrypted++
			ptOK = n-4 == CookieSize
		}
		rest = rest[n:]
	}
	valid := flags == 0 && ptOK && len(req) <= ntp.MaxPacketLen &&
		uidValue >= minUIDLen && uidValue <= maxUIDLen &&
		placeholders+encrypted <= maxPlaceholders
	fit := (len(req) - ntp.HeaderLen - efHeaderLen - uidValue - authFieldLen(0)) / cookieFieldLen
	return valid, min(1+placeholders+encrypted, fit)
}

// checkMutatedVerdict: a flipped request is dropped, or NAKed when the flip
// changed the cookie the server sees (its value or its framing, which can
// also shift into the UID field's length). A NAK is a bare NTSN kiss whose
// only field echoes a UID taken from the request.
func checkMutatedVerdict(t *testing.T, req, reply []byte, v ntp.Verdict, pos, uidLen int) {
	t.Helper()
	cookieEnd := ntp.HeaderLen + ntp.ExtFieldLen(uidLen) + efHeaderLen + CookieSize
	switch v.Action {
	case ntp.ActionDrop:
		if reply != nil {
			t.Fatal("dropped with a reply")
		}
	case ntp.ActionNTSNAK:
		if pos < ntp.HeaderLen || pos >= cookieEnd {
			t.Fatalf("NAK for a flip at %d, outside the UID and cookie fields", pos)
		}
		p, err := ntp.Parse(reply)
		it := p.ExtFields()
		f, _ := it.Next()
		if err != nil || p.NumFields != 1 || p.Header.Stratum != 0 || p.Header.RefID != uint32(ntp.KissNTSN) ||
			f.Type != ntp.EFUniqueIdentifier || !bytes.Contains(req, f.Value) || len(f.Value) < minUIDLen {
			t.Fatalf("NAK is not a bare NTSN kiss echoing the UID: % x", reply)
		}
	default:
		t.Fatalf("mutated request at %d answered: %+v", pos, v)
	}
}

func checkFuzzReply(t *testing.T, fx *ntsFixture, reply, uid []byte, cookies int) {
	t.Helper()
	s := fx.session(t, 1)
	s.jar = nil
	n, err := s.ProcessReply(reply, uid)
	if err != nil {
		t.Fatalf("authenticated reply does not verify: %v", err)
	}
	if n != cookies || n > MaxCookies || n < 1 {
		t.Fatalf("%d cookies, want %d", n, cookies)
	}
	for _, c := range s.jar {
		if got, err := fx.ring.OpenCookie(c); err != nil || got != fx.keys {
			t.Fatalf("issued cookie does not open to the session keys: %v", err)
		}
	}
}
