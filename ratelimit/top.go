package ratelimit

import (
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Entry is one source prefix the table tracks.
type Entry struct {
	Prefix   netip.Prefix
	Requests uint32 // since it took its slot (saturating)
	Limited  uint32 // of those, over the limit
	Seen     time.Time
}

// Top returns at most n entries, most requests first. It locks one bucket
// at a time, so the packet path waits at most one bucket's scan (8 entries).
func (t *Table) Top(n int) []Entry {
	if n <= 0 {
		return nil
	}
	var out []Entry
	for bi := range t.buckets {
		b := &t.buckets[bi]
		b.mu.Lock()
		for i := range ways {
			if b.seen[i] == 0 {
				continue
			}
			out = append(out, Entry{Prefix: t.prefix(b.keys[i]), Requests: b.hits[i], Limited: b.over[i], Seen: time.Unix(0, b.seen[i])})
		}
		b.mu.Unlock()
		// Keep memory bounded by n, not by the table, while scanning.
		if len(out) > 4*n {
			out = topN(out, n)
		}
	}
	return topN(out, n)
}

func topN(es []Entry, n int) []Entry {
	slices.SortFunc(es, func(a, b Entry) int {
		if c := cmp.Compare(b.Requests, a.Requests); c != 0 {
			return c
		}
		return a.Prefix.Addr().Compare(b.Prefix.Addr())
	})
	return es[:min(n, len(es))]
}

// prefix turns a key back into the prefix it stands for.
func (t *Table) prefix(k entryKey) netip.Prefix {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	a := netip.AddrFrom16(b)
	if a.Is4In6() {
		return netip.PrefixFrom(a.Unmap(), t.cfg.PrefixV4)
	}
	return netip.PrefixFrom(a, t.cfg.PrefixV6)
}

// satInc adds one without wrapping, so a flood never makes a busy source look idle.
func satInc(v uint32) uint32 {
	if v == math.MaxUint32 {
		return v
	}
	return v + 1
}
