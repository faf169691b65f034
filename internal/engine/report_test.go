package engine

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"timegate/internal/config"
	"timegate/internal/report"
	"timegate/ntp"
	"timegate/symkey"
)

// TestEngineSourcesAndReconfigure: the sources report names the system peer, the liar
// as falseticker and each source's key; a reload that drops the liar, adds a server and
// replaces one key keeps the unchanged associations (same IDs, same state), restarts the
// re-keyed one and starts the new one, and the engine stays synchronised throughout.
func TestEngineSourcesAndReconfigure(t *testing.T) {
	r := seeded(t)
	synctest.Test(t, func(t *testing.T) {
		net := newFakeNet()
		offs := []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 3 * time.Second, 20 * time.Millisecond}
		keys := make([]*symkey.Key, len(offs))
		var srcs []config.Source
		for i, off := range offs {
			keys[i] = newKey(t, uint32(i+1), symkey.AES128CMAC, r)
			host := fmt.Sprintf("10.0.0.%d", i+1)
			net.add(host+":123", keyedServer(keys[i], 1, off))
			if i < 4 {
				srcs = append(srcs, server(host, 123, fmt.Sprintf("key %d", i+1)))
			}
		}
		set, _ := symkey.NewSet(keys...)
		var state atomic.Pointer[ntp.ServedState]
		e, _, _ := testEngine(t, Options{Sources: srcs, Keys: set, Rand: r, MinSources: 2}, net, &state)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		time.Sleep(3 * time.Minute)
		synctest.Wait()

		rows := sourcesNow(t, e)
		byName := map[string]report.Source{}
		for _, s := range rows {
			byName[s.Name] = s
		}
		if len(rows) != 4 || byName["10.0.0.4"].State != report.SourceFalseticker {
			t.Fatalf("sources: %+v", rows)
		}
		selected := 0
		for _, s := range rows {
			if s.Auth != "key" || s.KeyType != "AES128" || s.Reach == 0 || s.Address != s.Name+":123" || s.Samples == 0 || s.SinceRx < 0 {
				t.Errorf("row %+v", s)
			}
			if s.State == report.SourceSelected {
				selected++
			}
		}
		if selected != 1 {
			t.Fatalf("%d selected: %+v", selected, rows)
		}
		if sum := e.Summary(); !sum.Synchronised || sum.SystemPeer == "" || sum.Sources != 4 || sum.Age < 0 {
			t.Fatalf("summary %+v", sum)
		}

		// Reload: drop the liar, add 10.0.0.5, give 10.0.0.1 a new key.
		newKey1 := newKey(t, 1, symkey.AES128CMAC, r)
		net.add("10.0.0.1:123", keyedServer(newKey1, 1, 20*time.Millisecond))
		set2, _ := symkey.NewSet(newKey1, keys[1], keys[2], keys[4])
		srcs2 := []config.Source{srcs[0], srcs[1], srcs[2], server("10.0.0.5", 123, "key 5")}
		srcs2[1].Pos = config.Position{File: "moved.conf", Line: 9} // where a line is does not matter
		warnings, err := e.Reconfigure(t.Context(), Reload{Sources: srcs2, Keys: set2, MinSources: 2})
		if err != nil || len(warnings) != 0 {
			t.Fatalf("Reconfigure: %v %v", warnings, err)
		}
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		after := sourcesNow(t, e)
		ids := map[string]uint64{}
		for _, s := range after {
			ids[s.Name] = s.ID
			if s.State == report.SourceFalseticker || s.Reach == 0 {
				t.Errorf("after reload: %+v", s)
			}
		}
		if len(after) != 4 || ids["10.0.0.4"] != 0 || ids["10.0.0.5"] == 0 {
			t.Fatalf("after reload: %+v", after)
		}
		if ids["10.0.0.2"] != byName["10.0.0.2"].ID || ids["10.0.0.3"] != byName["10.0.0.3"].ID {
			t.Errorf("unchanged lines got new associations: %v vs %+v", ids, byName)
		}
		if ids["10.0.0.1"] == byName["10.0.0.1"].ID {
			t.Errorf("the re-keyed line kept its association with the old key")
		}
		if s := state.Load(); s.Stratum != 2 || s.Leap != ntp.LeapNone {
			t.Fatalf("not synchronised after the reload: %+v", s)
		}
		// Selection settings apply too: five agreeing sources cannot be had from
		// four, so the next rounds lose synchronisation (holding over first).
		if _, err := e.Reconfigure(t.Context(), Reload{Sources: srcs2, Keys: set2, MinSources: 5}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if sum := e.Summary(); !sum.Holdover || !strings.Contains(sum.Reason, "minsources 5") {
			t.Fatalf("after minsources 5: %+v", sum)
		}
		cancel()
		<-done
		if _, err := e.Sources(t.Context()); err != ErrNotRunning {
			t.Fatalf("Sources after Run: %v", err)
		}
	})
}

func sourcesNow(t *testing.T, e *Engine) []report.Source {
	t.Helper()
	rows, err := e.Sources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
