package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Verdict is the table's answer for one request.
type Verdict uint8

// Verdicts.
const (
	// Pass: the source is inside its limit; answer normally.
	Pass Verdict = iota
	// Drop: the source is over its limit; send nothing.
	Drop
	// Leak: the source is over its limit but this request won the random
	// one-in-2^Leak draw; answer normally so a spoofed victim still gets
	// time.
	Leak
	// KoD: the source is over its limit; answer with a RATE kiss (RFC 5905
	// §7.4). Returned only with Config.KoD, at most once per kiss interval
	// per source, so the kisses themselves are rate limited.
	KoD
)

var verdictNames = [...]string{"pass", "drop", "leak", "kod"}

// String returns a short stable name for logs and metric labels.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// MinKissSpacing is the shortest interval between two RATE kisses to one
// source, whatever the configured rate: ntpd and NTPsec send at most one KoD
// per second, so a spoofer cannot turn the kisses into a stream at the victim.
const MinKissSpacing = time.Second

// ways is the associativity of the table: a source can live in one of the
// 8 slots of the bucket its hash selects, and a new source evicts the least
// recently seen of them. An active source is the most recently seen of its
// bucket, so a flood of fresh (spoofed) sources evicts idle entries, not
// the abuser being limited (chrony's clientlog evicts the oldest record of
// a 16-record slot for the same reason).
const ways = 8

// bucket is one set of the set-associative table, with its own lock and
// counters: each worker of the UDP edge locks only the bucket its source
// hashes to, so two workers wait for each other only when they serve
// sources of the same bucket at the same moment, and no lock or counter
// line is shared by every request (the lock sits in the lines the lookup
// reads anyway). Nothing in a bucket is a pointer, so the garbage
// collector never scans the table.
type bucket struct {
	mu   sync.Mutex
	keys [ways]entryKey
	seen [ways]int64 // UnixNano of the last request; 0 marks an empty slot
	kiss [ways]int64 // UnixNano before which this source gets no RATE kiss
	// hits and over count the source's requests and those over its limit
	// since it took the slot: `gatectl clients` reads them.
	hits  [ways]uint32
	over  [ways]uint32
	cells [ways]cell
	stats bucketStats
}

// bucketStats are a bucket's counters, kept under its lock.
type bucketStats struct {
	passed, dropped, leaked, kod, evictions uint64
	used                                    int
}

// Table is a fixed-size table of per-source token buckets. All its memory
// is allocated by New; a full table evicts, it never grows. It is safe for
// concurrent use.
type Table struct {
	cfg        Config
	masks      masks
	seed       maphash.Seed
	limit      float64 // tokens per second
	burst      float64
	kissGap    int64 // ns between kisses to one source
	leakMask   uint64
	draw       func() uint64 // the leak draws
	bucketMask uint64
	buckets    []bucket
	invalid    atomic.Uint64 // requests without a valid source address
}

// Stats are the table's counters since New.
type Stats struct {
	Passed    uint64 // requests inside their limit
	Dropped   uint64 // over-limit requests not answered (and invalid addresses)
	Leaked    uint64 // over-limit requests answered by the random leak
	KoD       uint64 // over-limit requests answered with a RATE kiss
	Evictions uint64 // entries taken over by a new source
	Entries   int    // entries in use
	Capacity  int    // entries the table holds
}

// New builds a table for cfg; cfg.Size is rounded down to a power of two.
// The hash that places sources uses its own per-table random seed
// (hash/maphash) so that no one outside can aim many sources at one
// bucket. The leak draws come from math/rand/v2's top-level generator: the
// runtime's per-thread ChaCha8, seeded from the operating system, which is
// unpredictable to the sources and takes no lock (a seeded generator per
// table or shard would need one, shared by every worker).
func New(cfg Config) (*Table, error) { return NewWithDraw(cfg, rand.Uint64) }

// NewWithDraw is New with the leak draws taken from draw, which must be
// safe for concurrent use if the table is (Allow calls it under a bucket's
// lock, so different buckets call it at once). Tests give it a seeded
// generator so that which over-limit request leaks is reproducible.
func NewWithDraw(cfg Config, draw func() uint64) (*Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if draw == nil {
		return nil, fmt.Errorf("%w: no leak draw", ErrConfig)
	}
	cfg.Size = floorPow2(cfg.Size)
	nbuckets := cfg.Size / ways
	t := &Table{
		cfg:        cfg,
		masks:      makeMasks(cfg.PrefixV4, cfg.PrefixV6),
		seed:       maphash.MakeSeed(),
		limit:      math.Ldexp(1, -cfg.Interval),
		burst:      float64(cfg.Burst),
		kissGap:    int64(max(MinKissSpacing, time.Duration(math.Ldexp(float64(time.Second), cfg.Interval)))),
		leakMask:   1<<cfg.Leak - 1,
		draw:       draw,
		bucketMask: uint64(nbuckets - 1),
		buckets:    make([]bucket, nbuckets),
	}
	return t, nil
}

// Allow records a request from addr at now and says how to answer it. addr
// is the source address only: the port never matters. An invalid address is
// dropped. Allow does not allocate.
func (t *Table) Allow(addr netip.Addr, now time.Time) Verdict {
	k, ok := t.masks.key(addr)
	if !ok {
		t.invalid.Add(1)
		return Drop
	}
	b := &t.buckets[maphash.Comparable(t.seed, k)&t.bucketMask]
	ns := now.UnixNano()
	if ns == 0 {
		ns = 1 // 0 marks an empty slot
	}
	b.mu.Lock()
	i := t.slot(b, k, ns)
	v := t.decide(b, i, ns)
	b.mu.Unlock()
	return v
}

// slot finds the entry of k in b, or takes one for it: the first empty slot
// (slots fill in order and never empty again) or the least recently seen.
func (t *Table) slot(b *bucket, k entryKey, ns int64) int {
	oldest := 0
	for i := range ways {
		if b.seen[i] == 0 {
			b.stats.used++
			t.claim(b, i, k, ns)
			return i
		}
		if b.keys[i] == k {
			return i
		}
		if b.seen[i] < b.seen[oldest] {
			oldest = i
		}
	}
	b.stats.evictions++
	t.claim(b, oldest, k, ns)
	return oldest
}

// claim resets slot i for a new source with a full bucket at ns, whatever
// the previous owner left in it.
func (t *Table) claim(b *bucket, i int, k entryKey, ns int64) {
	b.keys[i] = k
	b.kiss[i] = math.MinInt64
	b.hits[i], b.over[i] = 0, 0
	b.cells[i] = cell{tokens: t.burst, last: ns}
}

func (t *Table) decide(b *bucket, i int, ns int64) Verdict {
	b.seen[i] = ns
	b.hits[i] = satInc(b.hits[i])
	if b.cells[i].allow(ns, t.limit, t.burst) {
		b.stats.passed++
		return Pass
	}
	b.over[i] = satInc(b.over[i])
	if t.draw()&t.leakMask == 0 {
		b.stats.leaked++
		return Leak
	}
	if t.cfg.KoD && ns >= b.kiss[i] {
		b.kiss[i] = ns + t.kissGap
		b.stats.kod++
		return KoD
	}
	b.stats.dropped++
	return Drop
}

// Stats returns the counters summed over all buckets, each read under its
// lock while Allow goes on: under load a consistent-enough snapshot. It
// costs a lock per bucket (512 at the default size), so it is for scrapes
// and reports, not for the packet path.
func (t *Table) Stats() Stats {
	st := Stats{Capacity: t.cfg.Size, Dropped: t.invalid.Load()}
	for i := range t.buckets {
		b := &t.buckets[i]
		b.mu.Lock()
		c := b.stats
		b.mu.Unlock()
		st.Passed += c.passed
		st.Dropped += c.dropped
		st.Leaked += c.leaked
		st.KoD += c.kod
		st.Evictions += c.evictions
		st.Entries += c.used
	}
	return st
}

// Config returns the table's configuration, with Size as built.
func (t *Table) Config() Config { return t.cfg }
