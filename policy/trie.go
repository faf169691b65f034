package policy

import (
	"encoding/binary"
	"net/netip"
)

// trie is a binary trie over address bits for longest-prefix match, stored
// in one slice with index links so that a Policy is a few allocations and a
// lookup none. The root is the /0 entry, always set (the built-in default),
// so a lookup always finds an entry. A lookup walks at most 32 (IPv4) or 128
// (IPv6) nodes, whatever the number of rules.
type trie struct {
	nodes []node
}

type node struct {
	child [2]uint32 // index in nodes; 0 = none (the root is never a child)
	entry
}

// entry is the merged rule set at one prefix.
type entry struct {
	flags Flags
	set   bool
	rule  int32 // last rule merged here; -1 = built-in default only
}

func newTrie(root Flags) trie {
	return trie{nodes: []node{{entry: entry{flags: root, set: true, rule: -1}}}}
}

// bit returns bit d (0 = most significant) of the 128-bit address hi:lo.
func bit(hi, lo uint64, d int) uint64 {
	if d < 64 {
		return hi >> (63 - d) & 1
	}
	return lo >> (127 - d) & 1
}

// insert merges flags into the entry for the first n bits of hi:lo.
func (t *trie) insert(hi, lo uint64, n int, flags Flags, rule int) {
	cur := uint32(0)
	for d := range n {
		b := bit(hi, lo, d)
		next := t.nodes[cur].child[b]
		if next == 0 {
			t.nodes = append(t.nodes, node{})
			next = uint32(len(t.nodes) - 1)
			t.nodes[cur].child[b] = next
		}
		cur = next
	}
	e := &t.nodes[cur].entry
	e.flags |= flags
	e.set = true
	e.rule = int32(rule)
}

// lookup returns the entry of the longest set prefix of hi:lo.
func (t *trie) lookup(hi, lo uint64, maxBits int) *entry {
	n := &t.nodes[0]
	best := &n.entry
	for d := range maxBits {
		next := n.child[bit(hi, lo, d)]
		if next == 0 {
			break
		}
		n = &t.nodes[next]
		if n.set {
			best = &n.entry
		}
	}
	return best
}

// split returns an address as two 64-bit halves, an IPv4 address in the top
// 32 bits of hi, so that bit d is bit d of the address in both families.
func split(a netip.Addr) (hi, lo uint64) {
	if a.Is4() {
		b := a.As4()
		return uint64(binary.BigEndian.Uint32(b[:])) << 32, 0
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}
