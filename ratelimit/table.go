package ratelimit

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// ErrRandom is returned by New when the random source fails.
var ErrRandom = errors.New("ratelimit: random source failed")

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

const (
	// ways is the associativity of the table: a source can live in one of
	// the 8 slots of the bucket its hash selects, and a new source evicts the
	// least recently seen of them. An active source is the most recently
	// seen of its bucket, so a flood of fresh (spoofed) sources evicts idle
	// entries, not the abuser being limited (chrony's clientlog evicts the
	// oldest record of a 16-record slot for the same reason).
	ways = 8
	// maxShards bounds lock striping: 64 mutexes keep contention negligible
	// on any core count this gateway runs on.
	maxShards = 64
)

// limiter is the per-source token bucket, stored inline in the table.
type limiter = rate.Limiter

// bucket is one set of the set-associative table. Keys and times are kept
// apart from the limiters so that a lookup reads two cache lines of keys.
type bucket struct {
	keys [ways]entryKey
	seen [ways]int64 // UnixNano of the last request; 0 marks an empty slot
	kiss [ways]int64 // UnixNano before which this source gets no RATE kiss
	// hits and over count the source's requests and those over its limit
	// since it took the slot: `gatectl clients` reads them.
	hits [ways]uint32
	over [ways]uint32
	lims [ways]limiter
}

// counters are per shard, updated under the shard lock and read atomically
// by Stats; keeping them per shard avoids one contended cache line.
type counters struct {
	passed, dropped, leaked, kod, evictions, used atomic.Uint64
}

type shard struct {
	mu      sync.Mutex
	rng     rand.ChaCha8 // leak draws; unpredictable to the sources
	buckets []bucket
	counters
	_ [64]byte // keep the next shard's mutex off this shard's counters' line
}

// Table is a fixed-size table of per-source token buckets. All its memory
// is allocated by New; a full table evicts, it never grows. It is safe for
// concurrent use.
type Table struct {
	cfg        Config
	masks      masks
	seed       maphash.Seed
	limit      rate.Limit
	fill       time.Duration // backdating that gives a new entry a full bucket
	kissGap    int64         // ns between kisses to one source
	leakMask   uint64
	shardShift uint // shard = hash >> shardShift
	bucketMask uint64
	shards     []shard
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
// rnd seeds the leak draws (nil = crypto/rand); the hash that places sources
// uses its own per-table random seed (hash/maphash) so that no one outside
// can aim many sources at one bucket.
func New(cfg Config, rnd io.Reader) (*Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rnd == nil {
		rnd = crand.Reader
	}
	cfg.Size = floorPow2(cfg.Size)
	nbuckets := cfg.Size / ways
	nshards := min(maxShards, nbuckets)
	t := &Table{
		cfg:        cfg,
		masks:      makeMasks(cfg.PrefixV4, cfg.PrefixV6),
		seed:       maphash.MakeSeed(),
		limit:      rate.Limit(math.Ldexp(1, -cfg.Interval)),
		fill:       time.Duration(float64(cfg.Burst+1) * math.Ldexp(1, cfg.Interval) * float64(time.Second)),
		kissGap:    int64(max(MinKissSpacing, time.Duration(math.Ldexp(float64(time.Second), cfg.Interval)))),
		leakMask:   1<<cfg.Leak - 1,
		shardShift: uint(64 - log2(nshards)),
		bucketMask: uint64(nbuckets/nshards - 1),
		shards:     make([]shard, nshards),
	}
	all := make([]bucket, nbuckets)
	per := nbuckets / nshards
	for i := range t.shards {
		var seed [32]byte
		if _, err := io.ReadFull(rnd, seed[:]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRandom, err)
		}
		s := &t.shards[i]
		s.rng.Seed(seed)
		s.buckets = all[i*per : (i+1)*per : (i+1)*per]
	}
	return t, nil
}

// Allow records a request from addr at now and says how to answer it. addr
// is the source address only: the port never matters. An invalid address is
// dropped. Allow does not allocate.
func (t *Table) Allow(addr netip.Addr, now time.Time) Verdict {
	k, ok := t.masks.key(addr)
	if !ok {
		t.shards[0].dropped.Add(1)
		return Drop
	}
	h := maphash.Comparable(t.seed, k)
	s := &t.shards[h>>t.shardShift]
	b := &s.buckets[h&t.bucketMask]
	ns := now.UnixNano()
	if ns == 0 {
		ns = 1 // 0 marks an empty slot
	}
	s.mu.Lock()
	i := t.slot(s, b, k, now)
	v := t.decide(s, b, i, ns, now)
	s.mu.Unlock()
	return v
}

// slot finds the entry of k in b, or takes one for it: the first empty slot
// (slots fill in order and never empty again) or the least recently seen.
func (t *Table) slot(s *shard, b *bucket, k entryKey, now time.Time) int {
	oldest := 0
	for i := range ways {
		if b.seen[i] == 0 {
			s.used.Add(1)
			b.lims[i].SetBurstAt(now, t.cfg.Burst) // a zero Limiter has burst 0
			t.claim(b, i, k, now)
			return i
		}
		if b.keys[i] == k {
			return i
		}
		if b.seen[i] < b.seen[oldest] {
			oldest = i
		}
	}
	s.evictions.Add(1)
	t.claim(b, oldest, k, now)
	return oldest
}

// claim resets slot i for a new source, reusing its limiter in place: the
// limiter's clock is set fill earlier than now, so at now it holds a full
// bucket whatever the previous owner left in it (SetLimitAt keeps the old
// tokens, never negative, and the refill up to now tops them to Burst).
func (t *Table) claim(b *bucket, i int, k entryKey, now time.Time) {
	b.keys[i] = k
	b.kiss[i] = math.MinInt64
	b.hits[i], b.over[i] = 0, 0
	b.lims[i].SetLimitAt(now.Add(-t.fill), t.limit)
}

func (t *Table) decide(s *shard, b *bucket, i int, ns int64, now time.Time) Verdict {
	b.seen[i] = ns
	b.hits[i] = satInc(b.hits[i])
	if b.lims[i].AllowN(now, 1) {
		s.passed.Add(1)
		return Pass
	}
	b.over[i] = satInc(b.over[i])
	if s.rng.Uint64()&t.leakMask == 0 {
		s.leaked.Add(1)
		return Leak
	}
	if t.cfg.KoD && ns >= b.kiss[i] {
		b.kiss[i] = ns + t.kissGap
		s.kod.Add(1)
		return KoD
	}
	s.dropped.Add(1)
	return Drop
}

// Stats returns the counters summed over all shards. They are read without
// stopping Allow, so under load they are a consistent-enough snapshot.
func (t *Table) Stats() Stats {
	st := Stats{Capacity: t.cfg.Size}
	for i := range t.shards {
		c := &t.shards[i].counters
		st.Passed += c.passed.Load()
		st.Dropped += c.dropped.Load()
		st.Leaked += c.leaked.Load()
		st.KoD += c.kod.Load()
		st.Evictions += c.evictions.Load()
		st.Entries += int(c.used.Load())
	}
	return st
}

// Config returns the table's configuration, with Size as built.
func (t *Table) Config() Config { return t.cfg }

// log2 returns log2(n) for a power of two n.
func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}
