package upstream_test

import (
	"bytes"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/upstream"
)

// FuzzHandleResponse: a hostile or spoofing upstream controls every byte of
// a reply. For a keyed source after one good exchange, any reply other than
// the genuine answer to our request must leave everything selection sees
// unchanged and must not stop, re-key or slow the source; the genuine one is
// accepted. No input panics.
func FuzzHandleResponse(f *testing.F) {
	f.Add(uint16(0), byte(0), false, uint8(0))
	f.Add(uint16(1), byte(0x01), false, uint8(0))
	f.Add(uint16(12), byte(0xff), true, uint8(0))
	f.Add(uint16(60), byte(0x10), false, uint8(30))
	f.Fuzz(func(t *testing.T, at uint16, flip byte, kiss bool, cut uint8) {
		r := seededRand(1)
		key := testKey(t, 7, r)
		p := newPeer(t, r, key)
		cfg := baseConfig(r)
		cfg.Auth = upstream.KeyAuth{ID: 7, Key: key}
		src := upstream.NewSource(cfg)
		first, wake, _, _ := sends(src.HandleTimer(t0))
		if len(first) != 1 || wake <= 0 {
			t.Fatalf("first poll: %d sends, wake %v", len(first), wake)
		}
		srvRx := t0.Add(500 * time.Microsecond)
		src.HandleResponse(p.answer(first[0].Packet, srvRx, srvRx.Add(20*time.Microsecond)), t0, t0.Add(time.Millisecond))
		if kiss {
			// The genuine answer becomes an authenticated DENY kiss;
			// mutations of it are forged kisses.
			p.kiss = ntp.KissDENY
		}
		next := t0.Add(wake)
		genuine, sent, rx := exchange(t, src, p, next, 0)
		if genuine == nil {
			t.Skip("peer sent nothing")
		}
		mutated := append([]byte(nil), genuine...)
		mutated[int(at)%len(mutated)] ^= flip
		mutated = mutated[:len(mutated)-int(cut)%len(mutated)]
		before := observe(src)
		acts := src.HandleResponse(mutated, sent, rx)
		if bytes.Equal(mutated, genuine) {
			return // the real answer: accepted or kissed, both legitimate
		}
		_, _, rekey, demob := sends(acts)
		if rekey || demob != "" {
			t.Fatalf("a forged reply made the source rekey=%v stop=%q", rekey, demob)
		}
		if after := observe(src); after != before {
			t.Fatalf("a forged reply changed the source:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}
