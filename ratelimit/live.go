package ratelimit

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// Live holds the table in force for a limit a reload may change
// (`ntsratelimit`): callers Allow through it while Set replaces the table.
// The zero value is limiting off.
type Live struct {
	t atomic.Pointer[Table]
}

// Allow is the table's verdict on a request from addr, or Pass while
// limiting is off.
func (l *Live) Allow(addr netip.Addr, now time.Time) Verdict {
	t := l.t.Load()
	if t == nil {
		return Pass
	}
	return t.Allow(addr, now)
}

// Table is the table in force, nil while limiting is off.
func (l *Live) Table() *Table { return l.t.Load() }

// Set puts cfg in force (nil: limiting off). A table whose configuration
// is already cfg is kept, with what it remembers of each source, so that
// a reload that changes nothing here is no amnesty for a flood; any other
// change starts a new table, empty. Set is for one goroutine at a time
// (the reload's); Allow may run meanwhile.
func (l *Live) Set(cfg *Config) error {
	if cfg == nil {
		l.t.Store(nil)
		return nil
	}
	want := *cfg
	want.Size = floorPow2(want.Size)
	if cur := l.t.Load(); cur != nil && cur.Config() == want {
		return nil
	}
	t, err := New(*cfg)
	if err != nil {
		return err
	}
	l.t.Store(t)
	return nil
}
