package engine

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"timegate/internal/config"
	"timegate/ntp"
	"timegate/symkey"
	"timegate/upstream"
)

// trustNet is three keyed servers, 10.0.0.1 honest (20 ms ahead) and 10.0.0.2-3 agreeing
// liars 3 s ahead; mark adjusts each server line.
func trustNet(t *testing.T, mark func(i int, s *config.Source)) (*fakeNet, Options) {
	r := seeded(t)
	net := newFakeNet()
	var keys []*symkey.Key
	var srcs []config.Source
	for i, off := range []time.Duration{20 * time.Millisecond, 3 * time.Second, 3 * time.Second} {
		k := newKey(t, uint32(i+1), symkey.AES128CMAC, r)
		keys = append(keys, k)
		host := fmt.Sprintf("10.0.0.%d", i+1)
		net.add(host+":123", keyedServer(k, 1, off))
		s := server(host, 123, fmt.Sprintf("key %d", i+1))
		mark(i, &s)
		srcs = append(srcs, s)
	}
	set, err := symkey.NewSet(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return net, Options{Sources: srcs, Keys: set, Rand: r, MinSources: 1}
}

// `trust require` on the honest server (chrony's documented pairing): the two agreeing
// liars cannot outvote it, and cannot synchronise the gateway before it answers either
// (with trust alone, whichever source answers first under minsources 1 wins the first
// round, as in chrony).
func TestEngineTrustRequire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, opts := trustNet(t, func(i int, s *config.Source) { s.Trust, s.Require = i == 0, i == 0 })
		var state atomic.Pointer[ntp.ServedState]
		e, _, _ := testEngine(t, opts, net, &state)
		runFor(t, e, time.Minute)
		s := state.Load()
		now := time.Now()
		if off := s.Serve(now).Sub(now); s.Stratum != 2 || s.RefID != 0x0a000001 || (off-20*time.Millisecond).Abs() > time.Millisecond {
			t.Fatalf("published %+v serving %v ahead: want the trusted source's 20 ms", s, off)
		}
	})
}

// `require` on a server that does not answer: the two others agree, yet the gateway
// stays unsynchronised and says why in the reference ID.
func TestEngineRequire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, opts := trustNet(t, func(i int, s *config.Source) {
			s.Require = i == 0
		})
		net.servers[netip.MustParseAddrPort("10.0.0.1:123")].down.Store(true)
		var state atomic.Pointer[ntp.ServedState]
		e, _, _ := testEngine(t, opts, net, &state)
		runFor(t, e, time.Minute)
		if s := state.Load(); s.Stratum != 16 || s.RefID != upstream.ReasonNoRequired.RefID() {
			t.Fatalf("published %+v: want stratum 16 with refid REQD", s)
		}
	})
}
