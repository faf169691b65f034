package ratelimit

import (
	"encoding/binary"
	"net/netip"
)

// entryKey is a source address masked to its aggregation prefix, in the
// 128-bit IPv6 form as two big-endian halves; IPv4 sources are stored IPv4-mapped (::ffff:a.b.c.d), so
// an IPv4 key can never equal an IPv6 one (IPv6 sources that are themselves
// IPv4-mapped are unmapped first and become IPv4 keys).
type entryKey struct{ hi, lo uint64 }

// masks holds the two 64-bit halves of each IPv4 and IPv6 prefix mask, so
// that masking a source costs two ANDs.
type masks struct {
	v4       uint32
	v6h, v6l uint64
}

func makeMasks(p4, p6 int) masks {
	m := masks{v4: ^uint32(0) << (32 - p4)}
	switch {
	case p6 >= 64:
		m.v6h = ^uint64(0)
		if p6 > 64 {
			m.v6l = ^uint64(0) << (128 - p6)
		}
	case p6 > 0:
		m.v6h = ^uint64(0) << (64 - p6)
	}
	return m
}

// key returns the table key of a source. The port never takes part: one host
// cycling source ports is still one source. An invalid address has no key.
func (m *masks) key(addr netip.Addr) (entryKey, bool) {
	var k entryKey
	if !addr.IsValid() {
		return k, false
	}
	a := addr.As16() // IPv4 comes out IPv4-mapped; any zone is dropped
	hi := binary.BigEndian.Uint64(a[:8])
	lo := binary.BigEndian.Uint64(a[8:])
	if addr.Is4() || addr.Is4In6() {
		hi, lo = 0, 0xffff<<32|lo&uint64(m.v4)
	} else {
		hi, lo = hi&m.v6h, lo&m.v6l
	}
	return entryKey{hi, lo}, true
}
