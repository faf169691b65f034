package upstream_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/nts"
	"timegate/upstream"
)

// TestSourceRateKiss: an authentic RATE kiss at least doubles the poll interval, never
// beyond maxpoll, and ends a burst; the kiss is no sample.
func TestSourceRateKiss(t *testing.T) {
	seed := newSeed(t)
	for _, kind := range authKinds {
		r := seededRand(seed)
		cfg := baseConfig(r)
		cfg.IBurst = true
		src, p := kind.new(t, r, cfg)
		p.kiss = ntp.KissRATE
		now := t0
		for i := range 6 {
			pollBefore := src.Poll()
			reply, sent, rx := exchange(t, src, p, now, 0)
			if reply == nil {
				t.Fatalf("%s: the peer sent no kiss", kind.name)
			}
			_, wake, _, _ := sends(src.HandleResponse(reply, sent, rx))
			want := min(pollBefore+1, cfg.MaxPoll)
			if src.Poll() != want || wake != upstream.PollInterval(want) {
				t.Fatalf("%s: RATE %d: poll %d wake %v, want %d", kind.name, i, src.Poll(), wake, want)
			}
			now = now.Add(wake)
		}
		if st := src.Stats(); st.Kisses != 6 || st.Accepted != 0 || src.Reach() != 0 {
			t.Fatalf("%s: %+v reach %08b", kind.name, st, src.Reach())
		}
	}
}

// TestSourceDenyKiss: authentic DENY and RSTR stop the source for good.
func TestSourceDenyKiss(t *testing.T) {
	seed := newSeed(t)
	for _, code := range []ntp.KissCode{ntp.KissDENY, ntp.KissRSTR} {
		for _, kind := range authKinds {
			r := seededRand(seed)
			src, p := kind.new(t, r, baseConfig(r))
			reply, sent, rx := exchange(t, src, p, t0, 0)
			src.HandleResponse(reply, sent, rx)
			p.kiss = code
			reply, sent, rx = exchange(t, src, p, t0.Add(time.Minute), 0)
			_, _, _, why := sends(src.HandleResponse(reply, sent, rx))
			if why == "" || src.Stopped() != why {
				t.Fatalf("%s %v: no Demobilize (%q)", kind.name, code, src.Stopped())
			}
			if acts := src.HandleTimer(t0.Add(time.Hour)); len(acts) != 0 {
				t.Fatalf("%s: a stopped source acted: %v", kind.name, acts)
			}
			if _, ok := src.Candidate(); ok {
				t.Fatalf("%s: a stopped source is a candidate", kind.name)
			}
		}
	}
}

// TestSourceNTSNAKRekeys: when the server can no longer open our cookies (its keys
// rotated away), its NTS NAK echoing our UID asks for NTS-KE; the new session's first
// request goes out at once.
func TestSourceNTSNAKRekeys(t *testing.T) {
	r := seededRand(newSeed(t))
	p := newPeer(t, r, nil)
	cfg := baseConfig(r)
	cfg.NTS, cfg.Auth = true, upstream.NTSAuth{Session: p.ntsSession(t, r, 8)}
	src := upstream.NewSource(cfg)
	reply, sent, rx := exchange(t, src, p, t0, 0)
	src.HandleResponse(reply, sent, rx)
	ring, err := nts.NewKeyRing(t0, r)
	if err != nil {
		t.Fatal(err)
	}
	p.ring = ring // every cookie we hold is now unknown to the server
	reply, sent, rx = exchange(t, src, p, t0.Add(16*time.Second), 0)
	_, _, rekey, _ := sends(src.HandleResponse(reply, sent, rx))
	if !rekey {
		t.Fatalf("no Rekey after an NTS NAK: %+v", src.Stats())
	}
	if acts := src.HandleTimer(t0.Add(32 * time.Second)); len(acts) != 0 {
		t.Fatalf("sent while waiting for NTS-KE: %v", acts)
	}
	s, wake, _, _ := sends(src.HandleRekey(t0.Add(33*time.Second), upstream.NTSAuth{Session: p.ntsSession(t, r, 8)}, 0x7f000002, nil))
	if len(s) != 1 || wake <= 0 {
		t.Fatalf("after NTS-KE: %d sends, wake %v", len(s), wake)
	}
	srvRx := t0.Add(33*time.Second + time.Millisecond)
	src.HandleResponse(p.answer(s[0].Packet, srvRx, srvRx), t0.Add(33*time.Second), srvRx.Add(time.Millisecond))
	if c, ok := src.Candidate(); !ok || c.RefID != 0x7f000002 || src.Stats().Accepted != 2 {
		t.Fatalf("after re-keying: candidate %v %+v, stats %+v", ok, c, src.Stats())
	}
}

// TestSourceCookiesRunOut: an NTS source whose answers never come spends one cookie per
// request and then asks for NTS-KE instead of sending anything unauthenticated.
func TestSourceCookiesRunOut(t *testing.T) {
	r := seededRand(newSeed(t))
	p := newPeer(t, r, nil)
	cfg := baseConfig(r)
	cfg.NTS, cfg.Auth = true, upstream.NTSAuth{Session: p.ntsSession(t, r, 3)}
	src := upstream.NewSource(cfg)
	now := t0
	for i := range 4 {
		s, _, rekey, _ := sends(src.HandleTimer(now))
		if i < 3 && (len(s) != 1 || rekey) || i == 3 && (len(s) != 0 || !rekey) {
			t.Fatalf("poll %d: %d sends, rekey %v", i, len(s), rekey)
		}
		now = now.Add(16 * time.Second)
	}
}

// TestSourceKEBackoff: failing NTS-KE is retried after an exponentially growing wait
// with jitter, between half and all of KEBackoffMin·2^(n−1), capped at KEBackoffMax.
func TestSourceKEBackoff(t *testing.T) {
	r := seededRand(newSeed(t))
	cfg := baseConfig(r)
	cfg.NTS = true
	src := upstream.NewSource(cfg)
	now := t0
	if _, _, rekey, _ := sends(src.HandleTimer(now)); !rekey {
		t.Fatal("an NTS source without keys did not ask for NTS-KE")
	}
	fail := errors.New("connection refused")
	waits := map[time.Duration]bool{}
	for n := 1; n <= 14; n++ {
		_, wake, _, _ := sends(src.HandleRekey(now, nil, 0, fail))
		full := min(upstream.KEBackoffMin<<(n-1), upstream.KEBackoffMax)
		if wake < full/2 || wake > full {
			t.Fatalf("failure %d: wait %v outside [%v, %v]", n, wake, full/2, full)
		}
		waits[wake] = true
		now = now.Add(wake)
		if _, _, rekey, _ := sends(src.HandleTimer(now)); !rekey {
			t.Fatalf("failure %d: no new attempt after the back-off", n)
		}
	}
	if len(waits) < 10 {
		t.Fatalf("back-off has no jitter: %v", waits)
	}
	if src.Stats().Sent != 0 {
		t.Fatal("sent without NTS keys")
	}
}

// TestSourcePollAdapts: a quiet source climbs to maxpoll; one whose offset steps beyond
// what its delay explains returns to minpoll; path noise within the delay bound does not
// keep the poll short; a source that stops answering backs off to maxpoll.
func TestSourcePollAdapts(t *testing.T) {
	r := seededRand(newSeed(t))
	cfg := baseConfig(r)
	src := upstream.NewSource(cfg)
	p := newPeer(t, r, nil)
	now := t0
	poll := func(off time.Duration) {
		reply, sent, rx := exchange(t, src, p, now, off)
		src.HandleResponse(reply, sent, rx)
		now = now.Add(upstream.PollInterval(src.Poll()))
	}
	for range 40 {
		poll(0)
	}
	if src.Poll() != cfg.MaxPoll {
		t.Fatalf("stable source at poll %d, want maxpoll %d", src.Poll(), cfg.MaxPoll)
	}
	for i := range 40 {
		poll(time.Duration(i/2) * 30 * time.Millisecond) // a staircase: steps far beyond its delay
	}
	if src.Poll() != cfg.MinPoll {
		t.Fatalf("stepping source at poll %d, want minpoll %d", src.Poll(), cfg.MinPoll)
	}
	for range 60 {
		// Queueing noise within the 1 ms round trip's error bound lengthens the poll:
		// the minimum-delay filter copes with it.
		poll(time.Duration(rand.New(r).Int64N(800)-400) * time.Microsecond)
	}
	if src.Poll() != cfg.MaxPoll {
		t.Fatalf("source with path noise at poll %d, want maxpoll %d", src.Poll(), cfg.MaxPoll)
	}
	for range 16 {
		src.HandleTimer(now)
		now = now.Add(upstream.PollInterval(src.Poll()))
	}
	if src.Poll() != cfg.MaxPoll || src.Reach() != 0 {
		t.Fatalf("dead source at poll %d reach %08b, want maxpoll", src.Poll(), src.Reach())
	}
}

// TestSourceUnsynchronisedServer: a server that says it is unsynchronised is reachable
// but not a candidate, until it recovers.
func TestSourceUnsynchronisedServer(t *testing.T) {
	r := seededRand(newSeed(t))
	src := upstream.NewSource(baseConfig(r))
	p := newPeer(t, r, nil)
	now := t0
	for range 4 {
		reply, sent, rx := exchange(t, src, p, now, 0)
		src.HandleResponse(reply, sent, rx)
		now = now.Add(16 * time.Second)
	}
	p.state.Leap, p.state.Stratum = ntp.LeapUnsync, 16
	reply, sent, rx := exchange(t, src, p, now, 0)
	src.HandleResponse(reply, sent, rx)
	if _, ok := src.Candidate(); ok || src.Reach()&1 == 0 {
		t.Fatalf("unsynchronised server: candidate %v reach %08b", ok, src.Reach())
	}
	p.state.Leap, p.state.Stratum = ntp.LeapNone, 2
	reply, sent, rx = exchange(t, src, p, now.Add(16*time.Second), 0)
	src.HandleResponse(reply, sent, rx)
	if c, ok := src.Candidate(); !ok || c.Stratum != 2 {
		t.Fatalf("recovered server: candidate %v %+v", ok, c)
	}
}
