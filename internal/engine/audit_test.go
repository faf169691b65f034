package engine

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"timegate/audit"
	"timegate/internal/config"
	"timegate/ntp"
	"timegate/symkey"
)

// kissGate answers with a RATE kiss while on.
type kissGate struct{ on atomic.Bool }

func (g *kissGate) Admit(netip.Addr, time.Time, ntp.AuthKind) ntp.Admission {
	if g.on.Load() {
		return ntp.Admission{Action: ntp.ActionKoD, Kiss: ntp.KissRATE, Reason: ntp.ReasonRateLimited}
	}
	return ntp.Admission{Action: ntp.ActionReply}
}

// TestEngineAuditsKissesAndSilence: an authenticated RATE kiss to a running source and a
// source that stops answering are each one audit record, when they happen.
func TestEngineAuditsKissesAndSilence(t *testing.T) {
	r := seeded(t)
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		k := newKey(t, 1, symkey.AES128CMAC, r)
		srv := keyedServer(k, 1, 0)
		gate := &kissGate{}
		srv.resp.Gate = gate
		net.add("10.0.0.1:123", srv)
		set, _ := symkey.NewSet(k)
		var mu sync.Mutex
		var events []audit.Event
		rec := func(e audit.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
		var state atomic.Pointer[ntp.ServedState]
		src := server("10.0.0.1", 123, "key 1")
		e, _, _ := testEngine(t, Options{Sources: []config.Source{src}, Keys: set, Rand: r, MinSources: 1, Audit: rec}, net, &state)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		find := func(typ audit.Type) []audit.Event {
			mu.Lock()
			defer mu.Unlock()
			var out []audit.Event
			for _, ev := range events {
				if ev.Type == typ {
					out = append(out, ev)
				}
			}
			return out
		}
		if n := len(find(audit.TypeUpstreamKoD)) + len(find(audit.TypeUpstreamDown)); n != 0 {
			t.Fatalf("%d kiss/down records before any kiss or silence", n)
		}
		gate.on.Store(true)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		kods := find(audit.TypeUpstreamKoD)
		if len(kods) == 0 || kods[0].Details["kiss"] != "RATE" || kods[0].Subject.Source != "10.0.0.1:123" {
			t.Fatalf("RATE kiss records %+v", kods)
		}
		gate.on.Store(false)
		srv.down.Store(true)
		time.Sleep(2 * time.Hour) // more than 8 polls at maxpoll 6
		synctest.Wait()
		downs := find(audit.TypeUpstreamDown)
		if len(downs) != 1 || downs[0].Details["stage"] != "poll" {
			t.Fatalf("silence records %+v, want one", downs)
		}
		cancel()
		<-done
	})
}
