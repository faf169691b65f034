// Package interleave keeps what the server side of NTP interleaved mode
// (RFC 9769, chrony's "xleave") needs between two requests of a client: for
// each recent reply, its receive timestamp and the time it really left,
// which the next request, echoing that receive timestamp as its origin,
// gets as its transmit timestamp. It is pure: no clock, no I/O.
//
// The memory is fixed when the table is made, as chrony's clientlog keeps
// its timestamps in a fixed ring whose size comes from clientloglimit: a
// flood of requests from spoofed addresses evicts older entries, it never
// grows the table. Each entry answers at most one interleaved request, so
// a replayed or duplicated request cannot draw the same timestamp twice.
package interleave

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	"timegate/ntp"
)

// ways is the associativity: an entry lives in one of the 4 slots of the
// bucket its receive timestamp hashes to, and a new entry evicts the oldest
// of them, so under a flood the table keeps the most recent replies, as
// chrony's ring does.
const ways = 4

// Size limits.
const (
	// MinSize keeps at least two buckets.
	MinSize = 2 * ways
	// MaxSize is chrony's cap of 2^24 clientlog records (and timestamps).
	MaxSize = 1 << 24
)

// txShift scales the transmit offset an entry holds to 32 bits: units of
// 2^-30 s (0.93 ns), so ±2 s. A reply leaves microseconds after its
// request arrived, and chrony keeps only offsets within [-2 s, +1 s]; an
// offset beyond ±2 s means the clock stepped between the two readings,
// and the entry is kept without a transmit time.
const txShift = 2

// flags of an entry.
const (
	flagUsed     = 1 << iota // the slot holds an entry
	flagTx                   // tx is valid
	flagDisabled             // already answered one interleaved request, or duplicated
)

// entry is one reply: 16 octets, as chrony's NtpTimestamps.
type entry struct {
	rx    ntp.Time64 // the reply's receive timestamp, the key
	tx    int32      // transmit timestamp − rx, in 2^-30 s
	tag   uint16     // hash of the client address (see Table.tag)
	flags uint16
}

// bucket is one set, with its own lock: the UDP workers lock only the
// bucket a timestamp hashes to. Nothing in it is a pointer, so the garbage
// collector never scans the table.
type bucket struct {
	mu sync.Mutex
	e  [ways]entry
}

// EntryBytes is the memory one entry occupies, its share of the lock
// included.
const EntryBytes = int(unsafe.Sizeof(bucket{}) / ways)

// Table maps the receive timestamps of recent replies to their transmit
// times. All its memory is allocated by New. It is safe for concurrent use.
type Table struct {
	seedHash, seedTag uint64
	mask              uint64
	buckets           []bucket
	// used counts the slots ever filled (they never empty): written only
	// while the table fills, so it is no shared line on a busy path.
	used atomic.Int64
}

// ErrSize is returned by New for a size outside MinSize..MaxSize.
var ErrSize = errors.New("interleave: size out of range")

// New makes a table of size entries (rounded down to a power of two).
// rand seeds the hashes (nil: no seeding, for tests that want a fixed
// layout): the keys are our own receive timestamps, which a client cannot
// choose, but the seed also keeps the client tags unpredictable.
func New(size int, rand io.Reader) (*Table, error) {
	if size < MinSize || size > MaxSize {
		return nil, fmt.Errorf("%w: %d entries (want %d..%d)", ErrSize, size, MinSize, MaxSize)
	}
	n := 1
	for n <= size/2 {
		n *= 2
	}
	t := &Table{mask: uint64(n/ways - 1), buckets: make([]bucket, n/ways)}
	if rand != nil {
		var b [16]byte
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return nil, fmt.Errorf("interleave: seed: %w", err)
		}
		t.seedHash = binary.LittleEndian.Uint64(b[:8])
		t.seedTag = binary.LittleEndian.Uint64(b[8:])
	}
	return t, nil
}

// Capacity is the number of entries the table holds.
func (t *Table) Capacity() int { return len(t.buckets) * ways }

func (t *Table) bucket(rx ntp.Time64) *bucket {
	h := (uint64(rx) ^ t.seedHash) * 0x9e3779b97f4a7c15
	return &t.buckets[(h>>32)&t.mask]
}

// tag is a 16-bit hash of the client's address (never its port: chrony
// takes a new source port for every request). An entry answers only a
// request from the address its reply went to, so a spoofer sweeping
// guessed receive timestamps from its own addresses cannot use up other
// clients' entries; one that forges the client's address still can, which
// costs that client one exchange in basic mode.
func (t *Table) tag(a netip.Addr) uint16 {
	b := a.Unmap().As16()
	x := binary.LittleEndian.Uint64(b[:8]) ^ t.seedTag
	y := binary.LittleEndian.Uint64(b[8:])
	h := (x*0x9e3779b97f4a7c15 ^ y) * 0xc2b2ae3d27d4eb4f
	return uint16(h >> 48)
}

// find returns the slot of rx in b, or -1.
func find(b *bucket, rx ntp.Time64) int {
	for i := range ways {
		if b.e[i].flags&flagUsed != 0 && b.e[i].rx == rx {
			return i
		}
	}
	return -1
}

// Take returns the transmit timestamp of the reply whose receive timestamp
// was rx, sent to client, and disables the entry: each reply's transmit
// time is handed out once (chrony's CLG_DisableNtpTimestamps). ok is false
// when there is no such entry, it was used already, or its transmit time
// is unknown; a found entry is disabled in every case.
func (t *Table) Take(rx ntp.Time64, client netip.Addr) (tx ntp.Time64, ok bool) {
	if rx == 0 {
		return 0, false
	}
	tag := t.tag(client)
	b := t.bucket(rx)
	b.mu.Lock()
	defer b.mu.Unlock()
	i := find(b, rx)
	if i < 0 || b.e[i].tag != tag {
		return 0, false
	}
	e := &b.e[i]
	if e.flags&flagDisabled != 0 {
		return 0, false
	}
	e.flags |= flagDisabled
	if e.flags&flagTx == 0 {
		return 0, false
	}
	return rx + ntp.Time64(int64(e.tx)<<txShift), true
}

// Save records a reply with receive timestamp rx sent to client, leaving
// at tx as well as the daemon could tell before the send (the kernel's
// time comes later through UpdateTx). A receive timestamp seen before is
// disabled rather than overwritten, as chrony does: two replies with one
// receive timestamp could not say which transmit time is whose. When the
// bucket is full the oldest entry goes.
func (t *Table) Save(rx ntp.Time64, client netip.Addr, tx ntp.Time64) {
	if rx == 0 {
		return
	}
	tag := t.tag(client)
	b := t.bucket(rx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := find(b, rx); i >= 0 {
		b.e[i].flags |= flagDisabled
		return
	}
	slot := 0
	for i := range ways {
		if b.e[i].flags&flagUsed == 0 {
			slot = i
			t.used.Add(1)
			break
		}
		// Timestamps compare by their difference, so that the NTP era
		// rollover of 2036 does not make the newest look oldest.
		if int64(b.e[i].rx-b.e[slot].rx) < 0 {
			slot = i
		}
	}
	b.e[slot] = entry{rx: rx, tag: tag, flags: flagUsed}
	setTx(&b.e[slot], tx)
}

// setTx stores tx as an offset from the entry's receive timestamp, or
// marks it unknown when the offset does not fit.
func setTx(e *entry, tx ntp.Time64) {
	d := int64(tx-e.rx) >> txShift
	if d < -1<<31 || d >= 1<<31 {
		e.flags &^= flagTx
		return
	}
	e.tx = int32(d)
	e.flags |= flagTx
}

// maxTxDelay is chrony's MAX_TX_DELAY: a kernel transmit timestamp later
// than the daemon's by more than this belongs to some other packet, or
// the clock stepped.
const maxTxDelay = ntp.Time64(1 << 32) // 1 s

// UpdateTx replaces the daemon's transmit time of the reply with receive
// timestamp rx by the kernel's, tx. Like chrony's update_tx_timestamp it
// accepts only a time at or after the daemon's and at most a second later;
// it reports whether the entry took it.
func (t *Table) UpdateTx(rx, tx ntp.Time64) bool {
	if rx == 0 {
		return false
	}
	b := t.bucket(rx)
	b.mu.Lock()
	defer b.mu.Unlock()
	i := find(b, rx)
	if i < 0 || b.e[i].flags&flagTx == 0 {
		return false
	}
	e := &b.e[i]
	old := rx + ntp.Time64(int64(e.tx)<<txShift)
	if d := tx - old; int64(d) < 0 || d > maxTxDelay {
		return false
	}
	setTx(e, tx)
	return true
}

// Len is the number of entries in use.
func (t *Table) Len() int { return int(t.used.Load()) }
