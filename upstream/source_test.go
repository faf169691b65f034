package upstream_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/upstream"
)

var t0 = time.Date(2027, 5, 1, 8, 0, 0, 0, time.UTC)

// authKinds builds one source of each authentication kind against a fresh peer.
type authKind struct {
	name string
	new  func(t *testing.T, r *rand.ChaCha8, cfg upstream.SourceConfig) (*upstream.Source, *peer)
}

var authKinds = []authKind{
	{"none", func(t *testing.T, r *rand.ChaCha8, cfg upstream.SourceConfig) (*upstream.Source, *peer) {
		return upstream.NewSource(cfg), newPeer(t, r, nil)
	}},
	{"key", func(t *testing.T, r *rand.ChaCha8, cfg upstream.SourceConfig) (*upstream.Source, *peer) {
		k := testKey(t, 7, r)
		cfg.Auth = upstream.KeyAuth{ID: 7, Key: k}
		return upstream.NewSource(cfg), newPeer(t, r, k)
	}},
	{"nts", func(t *testing.T, r *rand.ChaCha8, cfg upstream.SourceConfig) (*upstream.Source, *peer) {
		p := newPeer(t, r, nil)
		cfg.NTS, cfg.Auth = true, upstream.NTSAuth{Session: p.ntsSession(t, r, 8)}
		return upstream.NewSource(cfg), p
	}},
}

func baseConfig(r *rand.ChaCha8) upstream.SourceConfig {
	return upstream.SourceConfig{ID: 1, RefID: 0xc0000201, MinPoll: 4, MaxPoll: 8,
		Precision: time.Microsecond, Rand: r}
}

// observable is everything selection and the edge can see of a source.
type observable struct {
	cand     upstream.Candidate
	candOK   bool
	reach    uint8
	poll     int8
	stopped  string
	stats    upstream.Stats
	filterOK bool
}

func observe(s *upstream.Source) observable {
	o := observable{reach: s.Reach(), poll: s.Poll(), stopped: s.Stopped()}
	o.cand, o.candOK = s.Candidate()
	o.stats, o.filterOK = s.FilterStats()
	return o
}

// TestSourceRequestsUseRandomNonces: RFC 9109 — the transmit timestamp is a random
// nonce, never the clock, different every time; requests are mode 3, version 4.
func TestSourceRequestsUseRandomNonces(t *testing.T) {
	r := seededRand(newSeed(t))
	src := upstream.NewSource(baseConfig(r))
	seen := map[ntp.Time64]bool{}
	for i := range 64 {
		now := t0.Add(time.Duration(i) * time.Minute)
		s, _, _, _ := sends(src.HandleTimer(now))
		h, err := ntp.DecodeHeader(s[0].Packet)
		if err != nil || h.Mode != ntp.ModeClient || h.Version != 4 || len(s[0].Packet) != ntp.HeaderLen {
			t.Fatalf("request %d: %+v %v", i, h, err)
		}
		if h.Transmit == 0 || seen[h.Transmit] || h.Transmit.Sub(ntp.Time64From(now)).Abs() < time.Hour {
			t.Fatalf("request %d: transmit %x is zero, repeated or the clock (%v)", i, h.Transmit, now)
		}
		if h.Origin != 0 || h.Receive != 0 || h.RefTime != 0 {
			t.Fatalf("request %d leaks timestamps: %+v", i, h)
		}
		seen[h.Transmit] = true
	}
}

// TestSourceIBurst: eight polls 2 s apart (or at the minpoll interval when that is
// shorter), then the poll interval.
func TestSourceIBurst(t *testing.T) {
	for _, tc := range []struct {
		min, max int8
		gap      time.Duration
	}{{6, 10, 2 * time.Second}, {-4, -4, time.Second / 16}} {
		r := seededRand(1)
		cfg := baseConfig(r)
		cfg.MinPoll, cfg.MaxPoll, cfg.IBurst = tc.min, tc.max, true
		src := upstream.NewSource(cfg)
		p := newPeer(t, r, nil)
		now := t0
		for i := range upstream.IBurstCount + 2 {
			s, wake, _, _ := sends(src.HandleTimer(now))
			want := tc.gap
			if i >= upstream.IBurstCount {
				want = upstream.PollInterval(tc.min)
			}
			if len(s) != 1 || wake != want || s[0].Timeout != min(want, upstream.MaxReplyWait) {
				t.Fatalf("minpoll %d poll %d: %d sends, wake %v timeout %v, want wake %v", tc.min, i, len(s), wake, s[0].Timeout, want)
			}
			rx := now.Add(time.Millisecond)
			src.HandleResponse(p.answer(s[0].Packet, rx, rx), now, rx.Add(time.Millisecond))
			now = now.Add(wake)
		}
		if src.Reach() != 0xff>>(8-min(8, upstream.IBurstCount+2)) && src.Reach() != 0xff {
			t.Fatalf("reach %08b", src.Reach())
		}
		if _, ok := src.Candidate(); !ok {
			t.Fatal("no candidate after a full burst")
		}
	}
}

// TestSourceReach: the register shifts at every poll, bit 0 set by an answer; three
// silent polls age the filter, eight make the source unreachable and unselectable.
func TestSourceReach(t *testing.T) {
	r := seededRand(newSeed(t))
	src := upstream.NewSource(baseConfig(r))
	p := newPeer(t, r, nil)
	now := t0
	for range 4 {
		reply, sent, rx := exchange(t, src, p, now, 0)
		src.HandleResponse(reply, sent, rx)
		now = now.Add(16 * time.Second)
	}
	if src.Reach() != 0x0f {
		t.Fatalf("reach %08b, want 00001111", src.Reach())
	}
	before, _ := src.FilterStats()
	for i := range 8 {
		src.HandleTimer(now) // nobody answers
		now = now.Add(upstream.PollInterval(src.Poll()))
		if i == 3 {
			if st, _ := src.FilterStats(); st.Dispersion <= before.Dispersion {
				t.Fatalf("dispersion %v did not grow after silent polls", st.Dispersion)
			}
		}
	}
	src.HandleTimer(now)
	if src.Reach() != 0 {
		t.Fatalf("reach %08b after 9 silent polls", src.Reach())
	}
	if _, ok := src.Candidate(); ok {
		t.Fatal("unreachable source still a candidate")
	}
}

// TestSourceForgeriesChangeNothing: replies with a bad origin, unauthenticated or
// tampered replies to an authenticated association, forged kisses, duplicates and replays
// leave every observable part of the source as it was, and the genuine reply is still
// accepted afterwards.
func TestSourceForgeriesChangeNothing(t *testing.T) {
	seed := newSeed(t)
	for _, kind := range authKinds {
		t.Run(kind.name, func(t *testing.T) {
			r := seededRand(seed)
			src, p := kind.new(t, r, baseConfig(r))
			now := t0
			var old []byte
			for range 3 {
				reply, sent, rx := exchange(t, src, p, now, 0)
				src.HandleResponse(reply, sent, rx)
				old = reply
				now = now.Add(16 * time.Second)
			}
			s, _, _, _ := sends(src.HandleTimer(now))
			req := s[0].Packet
			genuine := p.answer(req, now.Add(time.Millisecond), now.Add(time.Millisecond))
			before := observe(src)
			for name, forged := range forgeries(t, kind.name, req, genuine, old, r) {
				acts := src.HandleResponse(forged, now, now.Add(2*time.Millisecond))
				if len(acts) != 0 {
					t.Fatalf("%s: actions %v", name, acts)
				}
				if got := observe(src); !reflect.DeepEqual(got, before) {
					t.Fatalf("%s changed the source:\n%+v\nwas\n%+v", name, got, before)
				}
			}
			st := src.Stats()
			src.HandleResponse(genuine, now, now.Add(2*time.Millisecond))
			if src.Stats().Accepted != st.Accepted+1 {
				t.Fatalf("genuine reply not accepted after the forgeries: %+v", src.Stats())
			}
			for name, dup := range map[string][]byte{"duplicate": genuine, "replay": old} {
				before := observe(src)
				src.HandleResponse(dup, now, now.Add(3*time.Millisecond))
				if got := observe(src); !reflect.DeepEqual(got, before) {
					t.Fatalf("%s changed the source", name)
				}
			}
			t.Logf("%s: %+v", kind.name, src.Stats())
		})
	}
}

// forgeries returns hostile datagrams for the outstanding request req, whose genuine
// answer is genuine; old is an earlier genuine answer.
func forgeries(t *testing.T, kind string, req, genuine, old []byte, r *rand.ChaCha8) map[string][]byte {
	t.Helper()
	reqH, _ := ntp.DecodeHeader(req)
	wrongOrigin := reqH
	wrongOrigin.Transmit ^= 1 << 40
	out := map[string][]byte{
		"replay of an older answer": old,
		"empty":                     {},
		"short":                     genuine[:40],
	}
	bogus := bytes.Clone(genuine)
	bogus[24] ^= 0x80 // origin
	out["answer with a bad origin"] = bogus
	for _, code := range []ntp.KissCode{ntp.KissRATE, ntp.KissDENY, ntp.KissRSTR, ntp.KissNTSN} {
		h := ntp.KissHeader(&wrongOrigin, code)
		out[code.String()+" kiss with a bad origin"] = h.Append(nil)
	}
	if kind == "none" {
		return out
	}
	for _, code := range []ntp.KissCode{ntp.KissRATE, ntp.KissDENY, ntp.KissRSTR, ntp.KissNTSN} {
		h := ntp.KissHeader(&reqH, code)
		out["unauthenticated "+code.String()+" kiss"] = h.Append(nil)
		uid := make([]byte, 32)
		r.Read(uid)
		out[code.String()+" kiss with a stranger's UID"] = ntp.AppendExtField(h.Append(nil), ntp.EFUniqueIdentifier, uid)
	}
	plain := bytes.Clone(genuine[:ntp.HeaderLen])
	plain[40] ^= 1 // a different time, no authentication
	out["unauthenticated answer"] = plain
	for _, off := range []int{5, 41, len(genuine) - 1} {
		tampered := bytes.Clone(genuine)
		tampered[off] ^= 0x10
		out[fmt.Sprintf("answer tampered at octet %d", off)] = tampered
	}
	return out
}
