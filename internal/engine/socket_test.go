package engine

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timegate/internal/config"
	"timegate/ntp"
)

// TestEngineRandomSourcePorts: over real loopback sockets, every request leaves from a
// new source port (RFC 9109 §3) and the answers synchronise the engine.
func TestEngineRandomSourcePorts(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	st := &ntp.ServedState{Stratum: 1, RefID: 1, Precision: -20}
	resp := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	var mu sync.Mutex
	ports := map[uint16]int{}
	go func() {
		buf := make([]byte, 1024)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			mu.Lock()
			ports[from.Port()]++
			mu.Unlock()
			if out, _ := resp.Respond(make([]byte, 0, n), buf[:n], from, time.Now()); out != nil {
				pc.WriteToUDPAddrPort(out, from)
			}
		}
	}()
	port := netip.MustParseAddrPort(pc.LocalAddr().String()).Port()
	src := config.Source{Host: "127.0.0.1", Port: int(port), IBurst: true, MinPoll: -6, MaxPoll: -6}
	var state atomic.Pointer[ntp.ServedState]
	e, _, err := New(Options{Sources: []config.Source{src}, AuthSelectMode: "ignore", MinSources: 1,
		Publish: state.Store, Precision: -20})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range ports {
		total += n
	}
	// The kernel picks each port at random from the ephemeral range, so a repeat now and
	// then is chance (the birthday bound: about 3 % for 44 draws from 28,000); a socket
	// kept across requests would repeat every time.
	if len(ports) < total-3 {
		t.Errorf("%d requests came from only %d source ports: %v", total, len(ports), ports)
	}
	if total < 16 {
		t.Fatalf("only %d requests in 0.7 s at 1/64 s polls", total)
	}
	if s := state.Load(); s.Stratum != 2 {
		t.Fatalf("published %+v after %d answers", s, total)
	}
	t.Logf("%d requests from %d distinct source ports", total, len(ports))
}
