package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

// TestLiveSet: off passes everything; a limit in force limits; setting the
// same configuration again keeps the table and its history; another one
// starts afresh; nil turns it off.
func TestLiveSet(t *testing.T) {
	var l Live
	a := netip.MustParseAddr("192.0.2.1")
	now := time.Unix(1_700_000_000, 0)
	for range 100 {
		if v := l.Allow(a, now); v != Pass {
			t.Fatalf("off: verdict %v", v)
		}
	}
	cfg := Config{Interval: 4, Burst: 2, Leak: 1, PrefixV4: 32, PrefixV6: 64, Size: 1000}
	if err := l.Set(&cfg); err != nil {
		t.Fatal(err)
	}
	first := l.Table()
	if first == nil || first.Config().Size != 512 {
		t.Fatalf("table %v", first)
	}
	passed := 0
	for range 10 {
		if l.Allow(a, now) == Pass {
			passed++
		}
	}
	if passed != cfg.Burst {
		t.Fatalf("%d passed, want the burst of %d", passed, cfg.Burst)
	}
	same := cfg
	if err := l.Set(&same); err != nil || l.Table() != first {
		t.Fatalf("same configuration: err %v, table replaced %v", err, l.Table() != first)
	}
	if l.Allow(a, now) == Pass {
		t.Error("a kept table forgot the source over its limit")
	}
	wider := cfg
	wider.Burst = 8
	if err := l.Set(&wider); err != nil || l.Table() == first {
		t.Fatalf("changed configuration: err %v, table kept %v", err, l.Table() == first)
	}
	if l.Allow(a, now) != Pass {
		t.Error("a new table limits a source it has not seen")
	}
	bad := cfg
	bad.Burst = 0
	if err := l.Set(&bad); err == nil {
		t.Error("an invalid configuration was taken")
	}
	if l.Table().Config().Burst != 8 {
		t.Error("a refused configuration replaced the table")
	}
	if err := l.Set(nil); err != nil || l.Table() != nil || l.Allow(a, now) != Pass {
		t.Error("nil did not turn limiting off")
	}
}
