package policy

import (
	"encoding/binary"
	"net/netip"
)

// The match structure is built in two steps. A builder is a plain binary
// trie, one node per prefix bit, where inserting and merging rules is
// trivial. Since a Policy never changes afterwards, the builder is then
// path-compressed into a trie that keeps only the nodes a lookup can stop at
// (those holding rules) or must choose at (those with two children), each
// carrying its whole prefix. A lookup then visits at most one node per rule
// on the path instead of one per address bit: 1000 random rules cost a few
// nodes per lookup rather than up to 128.

// entry is the merged rule set at one prefix.
type entry struct {
	flags Flags
	set   bool
	rule  int32 // last rule merged here; -1 = built-in default only
}

type bnode struct {
	child [2]uint32 // index in nodes; 0 = none (the root is never a child)
	entry
}

type builder struct {
	nodes []bnode
}

func newBuilder(root Flags) builder {
	return builder{nodes: []bnode{{entry: entry{flags: root, set: true, rule: -1}}}}
}

// insert merges flags into the entry for the first n bits of hi:lo.
func (b *builder) insert(hi, lo uint64, n int, flags Flags, rule int) {
	cur := uint32(0)
	for d := range n {
		x := bit(hi, lo, d)
		next := b.nodes[cur].child[x]
		if next == 0 {
			b.nodes = append(b.nodes, bnode{})
			next = uint32(len(b.nodes) - 1)
			b.nodes[cur].child[x] = next
		}
		cur = next
	}
	e := &b.nodes[cur].entry
	e.flags |= flags
	e.set = true
	e.rule = int32(rule)
}

// node is a node of the compressed trie: its prefix hi:lo/bits, its
// children (by the bit after the prefix) and the rules set at the prefix.
type node struct {
	hi, lo uint64
	child  [2]uint32
	bits   uint8
	entry
}

// trie is a path-compressed binary trie whose root is the /0 entry, always
// set (the built-in default), so a lookup always finds an entry.
type trie struct {
	nodes []node
}

func (b *builder) compress() trie {
	var t trie
	t.add(b, 0, 0, 0, 0)
	return t
}

// add copies builder node bi, whose prefix is hi:lo/depth, and its subtree
// into t, skipping chains of nodes that hold no rule and do not branch.
func (t *trie) add(b *builder, bi uint32, hi, lo uint64, depth int) uint32 {
	ti := uint32(len(t.nodes))
	t.nodes = append(t.nodes, node{hi: hi, lo: lo, bits: uint8(depth), entry: b.nodes[bi].entry})
	for x := range uint64(2) {
		c := b.nodes[bi].child[x]
		if c == 0 {
			continue
		}
		chi, clo := setBit(hi, lo, depth, x)
		d := depth + 1
		for n := &b.nodes[c]; !n.set && (n.child[0] == 0) != (n.child[1] == 0); n = &b.nodes[c] {
			y := uint64(0)
			if n.child[0] == 0 {
				y = 1
			}
			chi, clo = setBit(chi, clo, d, y)
			c = n.child[y]
			d++
		}
		t.nodes[ti].child[x] = t.add(b, c, chi, clo, d)
	}
	return ti
}

// lookup returns the entry of the longest set prefix of hi:lo. Every node
// below n extends n's prefix, so once a child's prefix does not match the
// address no deeper node can.
func (t *trie) lookup(hi, lo uint64, maxBits int) *entry {
	n := &t.nodes[0]
	best := &n.entry
	for int(n.bits) < maxBits {
		next := n.child[bit(hi, lo, int(n.bits))]
		if next == 0 {
			break
		}
		n = &t.nodes[next]
		mh, ml := mask(n.bits)
		if (hi^n.hi)&mh != 0 || (lo^n.lo)&ml != 0 {
			break
		}
		if n.set {
			best = &n.entry
		}
	}
	return best
}

// mask returns the two halves of a prefix mask of n bits, 0 <= n <= 128
// (Go shifts of 64 or more give 0).
func mask(n uint8) (hi, lo uint64) {
	return ^uint64(0) << (64 - min(n, 64)), ^uint64(0) << (128 - uint(n))
}

// bit returns bit d (0 = most significant) of the 128-bit address hi:lo.
func bit(hi, lo uint64, d int) uint64 {
	if d < 64 {
		return hi >> (63 - d) & 1
	}
	return lo >> (127 - d) & 1
}

// setBit returns hi:lo with bit d set to x (which is 0 or 1).
func setBit(hi, lo uint64, d int, x uint64) (uint64, uint64) {
	if d < 64 {
		return hi | x<<(63-d), lo
	}
	return hi, lo | x<<(127-d)
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
