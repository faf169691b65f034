package upstream_test

import (
	"crypto/rand"
	"testing"
	"time"

	"timegate/interleave"
	"timegate/ntp"
	"timegate/upstream"
)

// xlPath is a server whose replies leave 100 µs after it read its clock for
// the transmit timestamp (a busy server, a queue on its way out), with 500 µs
// each way and the server off by off: basic mode reads an offset 50 µs
// short and a delay 100 µs long; the kernel's transmit time, which an
// interleaved reply carries, gives the truth.
func xlExchange(t *testing.T, src *upstream.Source, p *peer, now time.Time, off time.Duration) []upstream.Action {
	t.Helper()
	s, _, _, _ := sends(src.HandleTimer(now))
	if len(s) != 1 {
		t.Fatalf("poll at %v sent %d packets", now, len(s))
	}
	srvRx := now.Add(500 * time.Microsecond).Add(off)
	daemonTx := srvRx.Add(20 * time.Microsecond)
	kernelTx := srvRx.Add(120 * time.Microsecond)
	reply := p.answer(s[0].Packet, srvRx, daemonTx)
	if reply == nil {
		t.Fatal("no reply")
	}
	p.resp.KernelTransmit(reply, kernelTx)
	arrive := kernelTx.Add(-off).Add(500 * time.Microsecond)
	return src.HandleResponse(reply, now, arrive)
}

func xlPeer(t *testing.T, serverXL bool, keyed bool) (*peer, upstream.Auth) {
	r := seededRand(newSeed(t))
	var auth upstream.Auth = upstream.NoAuth{}
	p := newPeer(t, r, nil)
	if keyed {
		k := testKey(t, 9, r)
		p = newPeer(t, r, k)
		auth = upstream.KeyAuth{ID: 9, Key: k}
	}
	if serverXL {
		tb, err := interleave.New(64, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p.resp.Interleave = tb
	}
	return p, auth
}

// Against a server that answers interleaved (timegate's own server path),
// an xleave source uses interleaved mode from its third reply on and its
// samples lose the server's send delay; without xleave the same exchanges
// carry the 50 µs error.
func TestSourceInterleaved(t *testing.T) {
	const off = 3 * time.Millisecond
	for _, keyed := range []bool{false, true} {
		for _, xl := range []bool{true, false} {
			p, auth := xlPeer(t, true, keyed)
			src := upstream.NewSource(upstream.SourceConfig{ID: 1, MinPoll: 4, MaxPoll: 4, Auth: auth, Interleaved: xl, Rand: seededRand(7)})
			now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
			for range 8 {
				xlExchange(t, src, p, now, off)
				now = now.Add(16 * time.Second)
			}
			smp := src.LastSample()
			st := src.Stats()
			if xl {
				if !src.Interleaved() || st.Interleaved < 5 {
					t.Errorf("keyed %v: interleaved %v, %d interleaved samples of %d", keyed, src.Interleaved(), st.Interleaved, st.Accepted)
				}
				if d := smp.Offset - off; d.Abs() > time.Microsecond || (smp.Delay-time.Millisecond).Abs() > time.Microsecond {
					t.Errorf("keyed %v: interleaved sample offset %v delay %v, want %v and 1 ms", keyed, smp.Offset, smp.Delay, off)
				}
			} else {
				if src.Interleaved() || st.Interleaved != 0 {
					t.Errorf("keyed %v: without xleave: interleaved %v (%d)", keyed, src.Interleaved(), st.Interleaved)
				}
				if d := smp.Offset - (off - 50*time.Microsecond); d.Abs() > time.Microsecond {
					t.Errorf("keyed %v: basic sample offset %v, want %v", keyed, smp.Offset, off-50*time.Microsecond)
				}
			}
		}
	}
}

// A server that does not do interleaved mode answers every xleave request
// in basic mode; the source uses those samples as they are.
func TestSourceInterleavedFallsBack(t *testing.T) {
	p, auth := xlPeer(t, false, false)
	src := upstream.NewSource(upstream.SourceConfig{ID: 1, MinPoll: 4, MaxPoll: 4, Auth: auth, Interleaved: true, Rand: seededRand(8)})
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for range 6 {
		xlExchange(t, src, p, now, 0)
		now = now.Add(16 * time.Second)
	}
	if st := src.Stats(); st.Accepted != 6 || st.Interleaved != 0 || src.Interleaved() || src.Reach()&0x3f != 0x3f {
		t.Fatalf("stats %+v, interleaved %v, reach %o", st, src.Interleaved(), src.Reach())
	}
}

// The first interleaved reply after a basic one completes an exchange that
// already gave its basic sample: it gives none (chrony's test A), so one
// exchange never enters the filter twice. A reply whose origin is neither
// nonce is bogus in both modes.
func TestSourceInterleavedNoDoubleSample(t *testing.T) {
	p, auth := xlPeer(t, true, false)
	src := upstream.NewSource(upstream.SourceConfig{ID: 1, MinPoll: 4, MaxPoll: 4, Auth: auth, Interleaved: true, Rand: seededRand(9)})
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	want := []uint64{1, 2, 2, 3} // accepted after each exchange: basic, basic (kept), interleaved (no sample), interleaved
	for i, w := range want {
		xlExchange(t, src, p, now, 0)
		if got := src.Stats().Accepted; got != w {
			t.Fatalf("after exchange %d: %d samples, want %d (%+v)", i, got, w, src.Stats())
		}
		now = now.Add(16 * time.Second)
	}
	s, _, _, _ := sends(src.HandleTimer(now))
	req, _ := ntp.DecodeHeader(s[0].Packet)
	if req.Origin == 0 || req.Receive == 0 || req.Receive == req.Transmit {
		t.Fatalf("interleaved request %+v", req)
	}
	forged := ntp.Header{Version: 4, Mode: ntp.ModeServer, Stratum: 1, Origin: req.Receive + 2, Receive: 5, Transmit: 7}
	before := src.Stats()
	src.HandleResponse(forged.Append(nil), now, now.Add(time.Millisecond))
	if st := src.Stats(); st.Bogus != before.Bogus+1 || st.Accepted != before.Accepted {
		t.Fatalf("a reply with a foreign origin: %+v", st)
	}
}

// FuzzHandleResponseInterleaved: FuzzHandleResponse for a keyed xleave
// source whose next reply is interleaved: any reply but the genuine one
// changes nothing selection sees and never stops or re-keys the source.
func FuzzHandleResponseInterleaved(f *testing.F) {
	f.Add(uint16(24), byte(0x01), uint8(0))
	f.Add(uint16(40), byte(0x80), uint8(0))
	f.Add(uint16(60), byte(0x10), uint8(20))
	f.Fuzz(func(t *testing.T, at uint16, flip byte, cut uint8) {
		r := seededRand(2)
		key := testKey(t, 9, r)
		p := newPeer(t, r, key)
		tb, err := interleave.New(64, seededRand(3))
		if err != nil {
			t.Fatal(err)
		}
		p.resp.Interleave = tb
		cfg := baseConfig(r)
		cfg.Auth, cfg.Interleaved = upstream.KeyAuth{ID: 9, Key: key}, true
		src := upstream.NewSource(cfg)
		now := t0
		for range 3 { // basic, basic (kept), interleaved
			xlFuzzExchange(t, src, p, now, nil, nil)
			now = now.Add(time.Minute)
		}
		var before observable
		var genuine []byte
		acts := xlFuzzExchange(t, src, p, now, &before, func(reply []byte) []byte {
			genuine = reply
			m := append([]byte(nil), reply...)
			m[int(at)%len(m)] ^= flip
			return m[:len(m)-int(cut)%len(m)]
		})
		if genuine == nil {
			t.Skip("peer sent nothing")
		}
		_, _, rekey, demob := sends(acts)
		if rekey || demob != "" {
			t.Fatalf("a forged reply made the source rekey=%v stop=%q", rekey, demob)
		}
		forged := flip != 0 || int(cut)%len(genuine) != 0
		if !forged && (!src.Interleaved() || src.Stats().Interleaved == 0) {
			t.Fatalf("the genuine interleaved reply was not used: %+v", src.Stats())
		}
		if after := observe(src); forged && after != before {
			t.Fatalf("a forged reply changed the source:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}

// xlFuzzExchange is xlExchange with the reply passed through mutate, and
// the source observed into before (when not nil) once the request is out.
func xlFuzzExchange(t *testing.T, src *upstream.Source, p *peer, now time.Time, before *observable, mutate func([]byte) []byte) []upstream.Action {
	t.Helper()
	s, _, _, _ := sends(src.HandleTimer(now))
	if len(s) != 1 {
		t.Fatalf("poll at %v sent %d packets", now, len(s))
	}
	if before != nil {
		*before = observe(src)
	}
	srvRx := now.Add(500 * time.Microsecond)
	reply := p.answer(s[0].Packet, srvRx, srvRx.Add(20*time.Microsecond))
	if reply == nil {
		return nil
	}
	p.resp.KernelTransmit(reply, srvRx.Add(120*time.Microsecond))
	if mutate != nil {
		reply = mutate(reply)
	}
	return src.HandleResponse(reply, now, srvRx.Add(620*time.Microsecond))
}
