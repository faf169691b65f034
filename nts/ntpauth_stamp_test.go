package nts

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"timegate/ntp"
)

// TestNTSCookiesSealedBeforeTransmit looks into the reply buffer at the
// moment the responder reads the clock for the transmit timestamp: the new
// cookies must all be there already, sealed, in plaintext New Cookie fields
// where their ciphertext will go, so that the clock reading is followed by
// the Authenticator's one AES-SIV pass and nothing else. The cookies the
// client finally receives are exactly those, and the timestamp in the reply
// is the one read then.
func TestNTSCookiesSealedBeforeTransmit(t *testing.T) {
	f := newNTSFixture(t)
	_, req := f.request(t, 1) // 7 placeholders: 8 cookies
	dst := make([]byte, 0, ntp.MaxPacketLen)
	// Header, UID field, Authenticator field header and lengths, nonce, V.
	ptStart := ntp.HeaderLen + ntp.ExtFieldLen(len(testUID())) + efHeaderLen + authLengthsLen + authNonceLen + 16
	now := ntsRx.Add(20 * time.Microsecond)
	var atStamp [][]byte
	calls := 0
	f.resp.Now = func() time.Time {
		calls++
		buf := dst[:cap(dst)]
		for i := range MaxCookies {
			fl := buf[ptStart+i*cookieFieldLen:][:cookieFieldLen]
			if binary.BigEndian.Uint16(fl) != ntp.EFCookie || int(binary.BigEndian.Uint16(fl[2:])) != cookieFieldLen {
				t.Errorf("clock read before New Cookie field %d was written: % x", i, fl[:4])
				continue
			}
			if c, err := f.ring.OpenCookie(fl[efHeaderLen:]); err != nil || c != f.keys {
				t.Errorf("clock read before cookie %d was sealed: %v", i, err)
			}
			atStamp = append(atStamp, bytes.Clone(fl[efHeaderLen:]))
		}
		return now
	}
	reply, v := f.resp.Respond(dst, req, ntsClient, ntsRx)
	if v.Action != ntp.ActionReply || calls != 1 {
		t.Fatalf("verdict %+v, %d clock readings", v, calls)
	}
	got := f.replyCookies(t, reply)
	if len(got) != MaxCookies || len(atStamp) != MaxCookies {
		t.Fatalf("%d cookies issued, %d present at the clock reading", len(got), len(atStamp))
	}
	for i := range got {
		if !bytes.Equal(got[i], atStamp[i]) {
			t.Errorf("cookie %d changed after the clock reading", i)
		}
	}
	if bytes.Contains(reply, atStamp[0]) {
		t.Error("a cookie is visible in the reply: the Authenticator was not encrypted in place")
	}
	h, _ := ntp.DecodeHeader(reply)
	if want := ntp.Time64From(now.Add(time.Millisecond)) &^ 1; h.Transmit != want { // ends in 0: chrony's mark
		t.Errorf("transmit timestamp %#x, want %#x (the reading, served)", h.Transmit, want)
	}
}

// TestNTSRespondAllocs: an authenticated NTS reply to a client whose keys
// the server has expanded before allocates nothing; a client it has not
// seen (or no longer keeps, see keyCache) costs the AES key schedules
// crypto/aes.NewCipher insists on allocating (C2S's first key to verify
// the request, both S2C keys to seal the reply), once; a NAK allocates
// nothing.
func TestNTSRespondAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	f := newNTSFixture(t)
	_, req := f.request(t, 1)
	dst := make([]byte, 0, ntp.MaxPacketLen)
	reply := testing.AllocsPerRun(100, func() {
		if _, v := f.resp.Respond(dst, req, ntsClient, ntsRx); v.Action != ntp.ActionReply {
			t.Fatalf("verdict %+v", v)
		}
	})
	f.keys = testCookie(99)
	_, other := f.request(t, 1)
	first := testing.AllocsPerRun(1, func() {
		if _, v := f.resp.Respond(dst, other, ntsClient, ntsRx); v.Action != ntp.ActionReply {
			t.Fatalf("verdict %+v", v)
		}
	})
	for range 2 {
		f.ring, _ = f.ring.Rotated(testEpoch, seeded(3), 1)
	}
	nak := testing.AllocsPerRun(100, func() {
		if _, v := f.resp.Respond(dst, req, ntsClient, ntsRx); v.Action != ntp.ActionNTSNAK {
			t.Fatalf("verdict %+v", v)
		}
	})
	if reply != 0 || first > 3 || nak != 0 {
		t.Errorf("allocations per request: returning client %v (want 0), new client %v (want at most 3), NAK %v (want 0)", reply, first, nak)
	}
}
