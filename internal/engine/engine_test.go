package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"timegate/audit"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"timegate/internal/config"
	"timegate/ntp"
	"timegate/nts"
	"timegate/symkey"
	"timegate/upstream"
)

func seeded(t testing.TB) *rand.ChaCha8 {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

func newKey(t testing.TB, id uint32, typ symkey.Type, r *rand.ChaCha8) *symkey.Key {
	t.Helper()
	n := typ.KeySize()
	if n == 0 {
		n = 20 // digest types take any length; RFC 8573 asks for at least the digest's
	}
	secret := make([]byte, n)
	r.Read(secret)
	k, err := symkey.NewKey(id, typ, secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyedServer answers requests carrying key, serving its stratum and time offset by off
// from the bubble's clock, 1 ms away each way.
func keyedServer(key *symkey.Key, stratum uint8, off time.Duration) *fakeServer {
	st := &ntp.ServedState{Stratum: stratum, RefID: 0x47505300, Precision: -20,
		RootDispersion: 100 * time.Microsecond, Offset: off}
	return &fakeServer{delay: time.Millisecond, resp: &ntp.Responder{
		State: func() *ntp.ServedState { return st },
		Keys:  func(id uint32) (ntp.MACKey, bool) { return key, id == key.ID() },
	}}
}

func server(host string, port int, opts ...string) config.Source {
	s := config.Source{Host: host, Port: port, NTSPort: 4460, IBurst: true, MinPoll: 4, MaxPoll: 6}
	for _, o := range opts {
		switch {
		case o == "nts":
			s.NTS = true
		case o == "pool":
			s.Pool = true
		case strings.HasPrefix(o, "key "):
			var id uint32
			fmt.Sscan(o[4:], &id)
			s.KeyID = id
		}
	}
	return s
}

// testEngine builds an engine over net whose published state lands in state and whose
// log lines in the returned observer.
func testEngine(t *testing.T, opts Options, net *fakeNet, state *atomic.Pointer[ntp.ServedState]) (*Engine, *observer.ObservedLogs, []string) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	opts.Log = zap.New(core)
	opts.Dialer = net
	opts.Publish = state.Store
	opts.Precision = -20
	e, warnings, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e, logs, warnings
}

// TestEngineSynchronises: three keyed servers 20 ms ahead of the local clock and a keyed
// liar 3 s ahead. The engine publishes the honest time at their stratum + 1, with the
// system peer's address as reference ID, logs one selection line naming the liar as the
// falseticker, and uses a fresh socket for every request.
func TestEngineSynchronises(t *testing.T) {
	r := seeded(t)
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		var keys []*symkey.Key
		var srcs []config.Source
		for i, off := range []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 3 * time.Second, 20 * time.Millisecond} {
			k := newKey(t, uint32(i+1), symkey.AES128CMAC, r)
			keys = append(keys, k)
			host := fmt.Sprintf("10.0.0.%d", i+1)
			net.add(host+":123", keyedServer(k, 1, off))
			srcs = append(srcs, server(host, 123, fmt.Sprintf("key %d", i+1)))
		}
		set, err := symkey.NewSet(keys...)
		if err != nil {
			t.Fatal(err)
		}
		var state atomic.Pointer[ntp.ServedState]
		var auditMu sync.Mutex
		var events []audit.Event
		rec := func(e audit.Event) { auditMu.Lock(); events = append(events, e); auditMu.Unlock() }
		e, logs, warnings := testEngine(t, Options{Sources: srcs, Keys: set, Rand: r, Audit: rec}, net, &state)
		if len(warnings) != 0 {
			t.Fatalf("warnings: %v", warnings)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		synctest.Wait()
		if s := state.Load(); s.Stratum != 16 || s.Leap != ntp.LeapUnsync {
			t.Fatalf("before any answer: %+v", s)
		}
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		s := state.Load()
		now := time.Now()
		if off := s.Serve(now).Sub(now); s.Stratum != 2 || s.Leap != ntp.LeapNone || (off-20*time.Millisecond).Abs() > 50*time.Microsecond {
			t.Fatalf("published %+v: serves %v ahead, want stratum 2 and 20 ms", s, off)
		}
		peers := []uint32{0x0a000001, 0x0a000002, 0x0a000004}
		if !slices.Contains(peers, s.RefID) || s.RootDispersion <= 0 || s.RootDispersion > 50*time.Millisecond {
			t.Fatalf("published %+v", s)
		}
		synced := logs.FilterMessage("synchronised").All()
		if len(synced) != 1 {
			t.Fatalf("%d selection lines: %v", len(synced), logs.All())
		}
		// Which sources had answered by the first selection depends on
		// goroutine order: the three honest ones may agree before the liar
		// is heard. Whenever it is heard, it is a falseticker, never a
		// truechimer.
		ctxm := synced[0].ContextMap()
		if tc := fmt.Sprint(ctxm["truechimers"]); strings.Contains(tc, "10.0.0.3:") {
			t.Fatalf("the liar is a truechimer: %v", tc)
		}
		if f := fmt.Sprint(ctxm["falsetickers"]); f != "[10.0.0.3:123]" && f != "[]" {
			t.Fatalf("falsetickers %v", f)
		}
		// The audit trail has the selection once and the liar once as a
		// falseticker: changes, not rounds.
		auditMu.Lock()
		var got []string
		for _, ev := range events {
			got = append(got, string(ev.Type)+" "+ev.Subject.Source)
		}
		auditMu.Unlock()
		count := func(prefix string) (n int) {
			for _, g := range got {
				if strings.HasPrefix(g, prefix) {
					n++
				}
			}
			return n
		}
		// (An honest source may be outvoted in an early round, before all
		// are heard; that is on the record too.)
		if count("upstream.selected ") != 1 || count("upstream.falseticker 10.0.0.3:123") != 1 {
			t.Fatalf("audit events %q, want one upstream.selected and 10.0.0.3 once as a falseticker", got)
		}
		dials, open, writes := net.stats()
		if len(dials) != writes || writes < 4*upstream.IBurstCount || open > 4 {
			t.Fatalf("%d sockets for %d requests, %d open: want one per request, closed after the answer", len(dials), writes, open)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, open, _ := net.stats(); open != 0 {
			t.Fatalf("%d sockets left open", open)
		}
	})
}

// TestEngineHoldoverThenFallback: when every server dies, the engine holds over, then
// serves the fallback (`local stratum 8`) on the soft clock's law — no jump.
func TestEngineHoldoverThenFallback(t *testing.T) {
	r := seeded(t)
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		k := newKey(t, 1, symkey.AES256CMAC, r)
		set, _ := symkey.NewSet(k)
		srv := keyedServer(k, 3, 5*time.Millisecond)
		net.add("10.0.0.1:123", srv)
		fallback := &ntp.ServedState{Stratum: 8, RefID: 0x7f7f0101, RootDispersion: 10 * time.Millisecond}
		var state atomic.Pointer[ntp.ServedState]
		e, logs, _ := testEngine(t, Options{Sources: []config.Source{server("10.0.0.1", 123, "key 1")}, Keys: set,
			MinSources: 1, Holdover: 10 * time.Minute, Fallback: fallback, Rand: r}, net, &state)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go e.Run(ctx)
		synctest.Wait()
		if s := state.Load(); s.Stratum != 8 {
			t.Fatalf("before synchronising: %+v, want the fallback", s)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if s := state.Load(); s.Stratum != 4 {
			t.Fatalf("synchronised: %+v", s)
		}
		srv.down.Store(true)
		time.Sleep(8 * time.Minute)
		synctest.Wait()
		s := state.Load()
		if s.Stratum != 4 || logs.FilterMessage("holding over: no usable estimate").Len() == 0 {
			t.Fatalf("in holdover: %+v; log %v", s, logs.All())
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		now := time.Now()
		after := state.Load()
		if after.Stratum != 8 || after.RefID != 0x7f7f0101 {
			t.Fatalf("after the holdover limit: %+v", after)
		}
		if jump := after.Serve(now).Sub(s.Serve(now)); jump.Abs() > time.Millisecond {
			t.Fatalf("falling back moved served time by %v", jump)
		}
		if len(logs.FilterMessage("unsynchronised: serving the local clock").All()) < 2 {
			t.Fatalf("no fallback log line: %v", logs.All())
		}
	})
}

// TestEnginePollsApart: sources started together do not poll together
// (upstream.PollSpacing): every request, iburst ones included, leaves a
// separation after the one before it, whichever source sent either.
func TestEnginePollsApart(t *testing.T) {
	r := seeded(t)
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		var keys []*symkey.Key
		var srcs []config.Source
		for i := range 4 {
			k := newKey(t, uint32(i+1), symkey.AES128CMAC, r)
			keys = append(keys, k)
			host := fmt.Sprintf("10.0.0.%d", i+1)
			net.add(host+":123", keyedServer(k, 1, 0))
			srcs = append(srcs, server(host, 123, fmt.Sprintf("key %d", i+1)))
		}
		set, err := symkey.NewSet(keys...)
		if err != nil {
			t.Fatal(err)
		}
		var state atomic.Pointer[ntp.ServedState]
		e, _, _ := testEngine(t, Options{Sources: srcs, Keys: set, Rand: r}, net, &state)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		go e.Run(ctx)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		net.mu.Lock()
		at, dials := slices.Clone(net.dialAt), slices.Clone(net.dials)
		net.mu.Unlock()
		// 8 iburst polls each, then one every 16 to 64 s.
		if len(at) < 4*(8+4) {
			t.Fatalf("only %d requests in 5 minutes", len(at))
		}
		if first := at[0].Sub(start); first != 0 {
			t.Errorf("the first request left %v after start", first)
		}
		sep := upstream.PollSeparation(4) // minpoll 4 and maxpoll 6 both give 200 ms
		for i := 1; i < len(at); i++ {
			if gap := at[i].Sub(at[i-1]); gap < sep {
				t.Fatalf("request %d (%s) left %v after request %d (%s)", i, dials[i], gap, i-1, dials[i-1])
			}
		}
	})
}

// TestEngineNTSNeverPlain: an NTS source whose NTS-KE keeps failing sends no NTP at all,
// retries with a growing back-off, and the gateway stays unsynchronised.
func TestEngineNTSNeverPlain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		var calls []time.Time
		ke := func(ctx context.Context, addr string, conf *tls.Config) (*nts.KEResult, error) {
			if addr != "ke.example:4460" || conf.MinVersion != tls.VersionTLS13 {
				t.Errorf("NTS-KE to %q with %+v", addr, conf)
			}
			calls = append(calls, time.Now())
			return nil, errors.New("connection refused")
		}
		var state atomic.Pointer[ntp.ServedState]
		e, _, _ := testEngine(t, Options{Sources: []config.Source{server("ke.example", 123, "nts")}, KE: ke,
			Resolver: fakeResolver{}}, net, &state)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go e.Run(ctx)
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		if dials, _, _ := net.stats(); len(dials) != 0 {
			t.Fatalf("sent plain NTP without NTS keys: %v", dials)
		}
		if s := state.Load(); s.Stratum != 16 || s.Leap != ntp.LeapUnsync {
			t.Fatalf("published %+v", s)
		}
		if len(calls) < 5 || len(calls) > 12 {
			t.Fatalf("%d NTS-KE attempts in 30 min", len(calls))
		}
		for i := 2; i < len(calls); i++ {
			gap, want := calls[i].Sub(calls[i-1]), min(upstream.KEBackoffMin<<(i-1), upstream.KEBackoffMax)
			// The poll spacing stretches every wait by up to 2 %.
			if hi := want + time.Duration(float64(want)*upstream.PollRandomness); gap < want/2 || gap > hi {
				t.Fatalf("attempt %d came %v after the previous, want within [%v, %v]", i, gap, want/2, hi)
			}
		}
	})
}

// keResult is what an NTS-KE server holding ring answers: fresh session keys
// from sr, eight cookies sealed under the ring, and the NTP server it names.
func keResult(ring *nts.KeyRing, sr *rand.ChaCha8, server string, port uint16) *nts.KEResult {
	c := nts.Cookie{AEAD: nts.AEADAESSIVCMAC256}
	sr.Read(c.C2S[:])
	sr.Read(c.S2C[:])
	res := &nts.KEResult{AEAD: c.AEAD, C2S: c.C2S[:], S2C: c.S2C[:], NTPServer: server, NTPPort: port}
	for range 8 {
		ck, _ := ring.SealCookie(nil, c, sr)
		res.Cookies = append(res.Cookies, ck)
	}
	return res
}

// TestEngineNTSNegotiatedServer: the NTP server and port named by NTS-KE are used, and the
// time it gives is authenticated with the session.
func TestEngineNTSNegotiatedServer(t *testing.T) {
	// The server side (KE, the NTP server) runs on goroutines of its own:
	// it draws from a generator of its own.
	r, sr := seeded(t), seeded(t)
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		ring, err := nts.NewKeyRing(time.Now(), sr)
		if err != nil {
			t.Fatal(err)
		}
		st := &ntp.ServedState{Stratum: 2, RefID: 1, Precision: -20, Offset: -7 * time.Millisecond}
		net.add("10.9.9.9:4123", &fakeServer{delay: time.Millisecond, resp: &ntp.Responder{
			State: func() *ntp.ServedState { return st },
			NTS:   &nts.Server{Ring: func() *nts.KeyRing { return ring }, Rand: sr},
		}})
		kes := 0
		ke := func(context.Context, string, *tls.Config) (*nts.KEResult, error) {
			kes++
			return keResult(ring, sr, "ntp.example", 4123), nil
		}
		var state atomic.Pointer[ntp.ServedState]
		resolver := fakeResolver{"ntp.example": {netip.MustParseAddr("10.9.9.9")}}
		e, _, _ := testEngine(t, Options{Sources: []config.Source{server("ke.example", 123, "nts")}, KE: ke,
			Resolver: resolver, MinSources: 1, Rand: r}, net, &state)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go e.Run(ctx)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		s := state.Load()
		now := time.Now()
		if off := s.Serve(now).Sub(now); s.Stratum != 3 || s.RefID != 0x0a090909 || (off+7*time.Millisecond).Abs() > 50*time.Microsecond {
			t.Fatalf("published %+v, serving %v off", s, off)
		}
		dials, _, _ := net.stats()
		for _, d := range dials {
			if d != "10.9.9.9:4123" {
				t.Fatalf("request to %s, want the negotiated 10.9.9.9:4123", d)
			}
		}
		if kes != 1 {
			t.Fatalf("%d NTS-KE sessions: cookies should have been refilled by the replies", kes)
		}
	})
}

// TestEnginePool: a pool name becomes one association per address (up to four), and
// authselectmode ignore lets the unauthenticated ones synchronise the gateway.
func TestEnginePool(t *testing.T) {
	r := seeded(t)
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		var addrs []netip.Addr
		for i := range 6 {
			a := netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)})
			addrs = append(addrs, a)
			st := &ntp.ServedState{Stratum: 2, RefID: 1, Precision: -20}
			net.add(netip.AddrPortFrom(a, 123).String(), &fakeServer{delay: time.Millisecond,
				resp: &ntp.Responder{State: func() *ntp.ServedState { return st }}})
		}
		var state atomic.Pointer[ntp.ServedState]
		e, _, warnings := testEngine(t, Options{Sources: []config.Source{server("pool.example", 123, "pool")},
			AuthSelectMode: "ignore", Resolver: fakeResolver{"pool.example": addrs}, Rand: r}, net, &state)
		if len(warnings) != 0 {
			t.Fatalf("warnings under authselectmode ignore: %v", warnings)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go e.Run(ctx)
		time.Sleep(time.Minute)
		synctest.Wait()
		if s := state.Load(); s.Stratum != 3 {
			t.Fatalf("published %+v", s)
		}
		dials, _, _ := net.stats()
		used := map[string]bool{}
		for _, d := range dials {
			used[d] = true
		}
		if len(used) != poolSize {
			t.Fatalf("pool used %d addresses, want %d: %v", len(used), poolSize, used)
		}
	})
}

// TestEngineNTSPool: an NTS pool takes up to four of its name's addresses, and each runs
// NTS-KE with its own address (the certificate checked against the pool's name, not the
// address), then polls the NTP server that session names: four sources, four sessions,
// none sharing another's keys, as chronyd does with `pool NAME nts`.
func TestEngineNTSPool(t *testing.T) {
	r, sr := seeded(t), seeded(t)
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		ring, err := nts.NewKeyRing(time.Now(), sr)
		if err != nil {
			t.Fatal(err)
		}
		var addrs []netip.Addr
		for i := range 6 {
			a := netip.AddrFrom4([4]byte{10, 2, 0, byte(i + 1)})
			addrs = append(addrs, a)
			st := &ntp.ServedState{Stratum: 2, RefID: 1, Precision: -20}
			net.add(netip.AddrPortFrom(a, 123).String(), &fakeServer{delay: time.Millisecond, resp: &ntp.Responder{
				State: func() *ntp.ServedState { return st },
				NTS:   &nts.Server{Ring: func() *nts.KeyRing { return ring }, Rand: sr},
			}})
		}
		keTo := map[string]int{}
		var mu sync.Mutex
		ke := func(_ context.Context, addr string, conf *tls.Config) (*nts.KEResult, error) {
			mu.Lock()
			defer mu.Unlock()
			if conf.ServerName != "pool.example" {
				t.Errorf("NTS-KE to %s checks the certificate for %q, want the pool's name", addr, conf.ServerName)
			}
			keTo[addr]++
			// No server record: the NTP server is the KE server's address (RFC 8915 §4.1.7).
			host, _, _ := strings.Cut(addr, ":")
			return keResult(ring, sr, host, 123), nil
		}
		var state atomic.Pointer[ntp.ServedState]
		e, _, _ := testEngine(t, Options{Sources: []config.Source{server("pool.example", 123, "pool", "nts")}, KE: ke,
			Resolver: fakeResolver{"pool.example": addrs}, MinSources: 1, Rand: r}, net, &state)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go e.Run(ctx)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if s := state.Load(); s.Stratum != 3 {
			t.Fatalf("published %+v", s)
		}
		rows, err := e.Sources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		// Each row names the address its NTS-KE went to (gatectl
		// sources shows it before the KE has given an NTP address).
		for _, row := range rows {
			host, _, _ := strings.Cut(row.Address, ":")
			if keTo[row.KEAddress] == 0 || row.KEAddress != host+":4460" {
				t.Errorf("source row %s: KE address %q, NTP address %q; NTS-KE went to %v", row.Name, row.KEAddress, row.Address, keTo)
			}
		}
		if len(keTo) != poolSize {
			t.Fatalf("NTS-KE with %d addresses, want %d: %v", len(keTo), poolSize, keTo)
		}
		dials, _, _ := net.stats()
		used := map[string]bool{}
		for _, d := range dials {
			used[d] = true
			host, _, _ := strings.Cut(d, ":")
			if keTo[host+":4460"] == 0 {
				t.Fatalf("NTP to %s, which no NTS-KE session named", d)
			}
		}
		if len(used) != poolSize {
			t.Fatalf("polled %d NTP servers, want %d: %v", len(used), poolSize, used)
		}
	})
}

// TestEngineWarnings: sources policy makes unusable are start-up warnings, not errors.
func TestEngineWarnings(t *testing.T) {
	r := seeded(t)
	sha1 := newKey(t, 2, symkey.SHA1, r)
	set, _ := symkey.NewSet(sha1)
	for _, tc := range []struct {
		mode    string
		srcs    []config.Source
		want    []string
		sources int
	}{
		{"", []config.Source{server("10.0.0.1", 123)}, []string{"never selects it", "will not synchronise"}, 1},
		{"prefer", []config.Source{server("10.0.0.1", 123)}, nil, 1},
		{"require", []config.Source{server("10.0.0.1", 123, "key 9"), server("10.0.0.2", 123, "key 2")},
			[]string{"key 9 is not in the keyfile", "legacy digest"}, 1},
		{"require", []config.Source{server("10.0.0.1", 123, "nts")}, nil, 1},
	} {
		var state atomic.Pointer[ntp.ServedState]
		e, _, warnings := testEngine(t, Options{Sources: tc.srcs, Keys: set, AuthSelectMode: tc.mode}, newFakeNet(), &state)
		if len(warnings) != len(tc.want) || len(e.assocs) != tc.sources {
			t.Errorf("%s %v: warnings %q, %d sources", tc.mode, tc.srcs, warnings, len(e.assocs))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(warnings[i], w) {
				t.Errorf("%s: warning %q lacks %q", tc.mode, warnings[i], w)
			}
		}
	}
	if _, _, err := New(Options{Publish: func(*ntp.ServedState) {}, AuthSelectMode: "sometimes"}); err == nil {
		t.Error("unknown authselectmode accepted")
	}
}
