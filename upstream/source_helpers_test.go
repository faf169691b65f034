package upstream_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/nts"
	"timegate/symkey"
	"timegate/upstream"
)

// seededRand returns a reproducible randomness source; tests log the seed.
func seededRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

func newSeed(t testing.TB) uint64 {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return seed
}

// peer is a fake upstream server: the real server path (ntp.Responder, with symmetric
// keys and NTS) answering at timestamps the test chooses, so the Source under test is
// checked against the same packets timegate itself serves.
type peer struct {
	state ntp.ServedState
	resp  *ntp.Responder
	tx    time.Time // the transmit timestamp the next answer carries
	kiss  ntp.KissCode
	ring  *nts.KeyRing
}

var peerClient = netip.MustParseAddrPort("192.0.2.1:40000")

// kissGate answers every request with a kiss when the peer has one set.
type kissGate struct{ p *peer }

func (g kissGate) Admit(netip.Addr, time.Time, ntp.AuthKind) ntp.Admission {
	if g.p.kiss != 0 {
		return ntp.Admission{Action: ntp.ActionKoD, Kiss: g.p.kiss}
	}
	return ntp.Admission{Action: ntp.ActionReply}
}

func newPeer(t testing.TB, r *rand.ChaCha8, key *symkey.Key) *peer {
	t.Helper()
	p := &peer{state: ntp.ServedState{Stratum: 1, RefID: 0x47505300, Precision: -20,
		RootDispersion: 100 * time.Microsecond}}
	ring, err := nts.NewKeyRing(time.Now(), r)
	if err != nil {
		t.Fatal(err)
	}
	p.ring = ring
	p.resp = &ntp.Responder{
		State: func() *ntp.ServedState { return &p.state },
		Now:   func() time.Time { return p.tx },
		Gate:  kissGate{p},
		NTS:   &nts.Server{Ring: func() *nts.KeyRing { return p.ring }, Rand: r},
	}
	if key != nil {
		p.resp.Keys = func(id uint32) (ntp.MACKey, bool) { return key, id == key.ID() }
	}
	return p
}

// answer serves req as received at rx and sent back at tx (server clock).
func (p *peer) answer(req []byte, rx, tx time.Time) []byte {
	p.tx = tx
	out, _ := p.resp.Respond(make([]byte, 0, len(req)), req, peerClient, rx)
	return out
}

// ntsSession returns a client session whose cookies this peer opens, as NTS-KE would
// have handed it over.
func (p *peer) ntsSession(t testing.TB, r *rand.ChaCha8, cookies int) *nts.ClientSession {
	t.Helper()
	c := nts.Cookie{AEAD: nts.AEADAESSIVCMAC256}
	r.Read(c.C2S[:])
	r.Read(c.S2C[:])
	ke := &nts.KEResult{AEAD: c.AEAD, C2S: c.C2S[:], S2C: c.S2C[:]}
	for range cookies {
		ck, err := p.ring.SealCookie(nil, c, r)
		if err != nil {
			t.Fatal(err)
		}
		ke.Cookies = append(ke.Cookies, ck)
	}
	s, err := nts.NewClientSession(ke)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testKey(t testing.TB, id uint32, r *rand.ChaCha8) *symkey.Key {
	t.Helper()
	secret := make([]byte, 16)
	r.Read(secret)
	k, err := symkey.NewKey(id, symkey.AES128CMAC, secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sends returns the Send actions of acts and whether a Rekey or Demobilize was asked.
func sends(acts []upstream.Action) (out []upstream.Send, wake time.Duration, rekey bool, demob string) {
	wake = -1
	for _, a := range acts {
		switch a := a.(type) {
		case upstream.Send:
			out = append(out, a)
		case upstream.WakeAfter:
			wake = a.D
		case upstream.Rekey:
			rekey = true
		case upstream.Demobilize:
			demob = a.Reason
		}
	}
	return out, wake, rekey, demob
}

// exchange drives one poll of src against p with an honest 1 ms path and the server
// offset off, at local time now, and returns the reply (nil if none).
func exchange(t testing.TB, src *upstream.Source, p *peer, now time.Time, off time.Duration) (reply []byte, sent, rx time.Time) {
	t.Helper()
	s, _, _, _ := sends(src.HandleTimer(now))
	if len(s) != 1 {
		t.Fatalf("poll at %v sent %d packets", now, len(s))
	}
	sent = now
	srvRx := now.Add(500 * time.Microsecond).Add(off)
	reply = p.answer(s[0].Packet, srvRx, srvRx.Add(20*time.Microsecond))
	return reply, sent, now.Add(1020 * time.Microsecond)
}
