package nts

import (
	"bytes"
	"testing"

	"timegate/ntp"
)

// FuzzProcessReply feeds hostile server replies to the client side: a
// compromised or spoofing upstream controls every byte. Properties: no
// panic; an error never changes the cookie jar; a reply that differs from
// the genuine one in any byte is never accepted as authenticated time; the
// jar never exceeds MaxCookies.
func FuzzProcessReply(f *testing.F) {
	fx := newNTSFixture(f)
	sess, req := fx.request(f, 2)
	genuine, _ := fx.respond(req)
	f.Add(genuine, uint16(0), byte(0))
	f.Add(genuine, uint16(60), byte(1))
	f.Add(genuine, uint16(len(genuine)-1), byte(0x80))
	f.Add([]byte{}, uint16(0), byte(0))
	nak := ntp.KissHeader(&ntp.Header{Version: 4, Transmit: ntsNonce}, ntp.KissNTSN)
	f.Add(ntp.AppendExtField(nak.Append(nil), ntp.EFUniqueIdentifier, testUID()), uint16(0), byte(0))
	f.Fuzz(func(t *testing.T, reply []byte, at uint16, flip byte) {
		s := *sess
		s.jar = append([][]byte(nil), sess.jar...)
		before := len(s.jar)
		mutated := append([]byte(nil), reply...)
		if len(mutated) > 0 {
			mutated[int(at)%len(mutated)] ^= flip
		}
		n, err := s.ProcessReply(mutated, testUID())
		if err != nil {
			if len(s.jar) != before {
				t.Fatalf("failed reply changed the jar from %d to %d cookies", before, len(s.jar))
			}
			return
		}
		if !bytes.Equal(mutated, genuine) {
			t.Fatalf("accepted a reply that is not the genuine one (%d new cookies)", n)
		}
		if len(s.jar) > MaxCookies {
			t.Fatalf("jar holds %d cookies", len(s.jar))
		}
	})
}
