// Package ratelimit is timegate's per-source response rate limiter: a table of
// token buckets whose memory is fixed when it is built, modelled on chrony's
// clientlog (the ratelimit, ntsratelimit, cmdratelimit and clientloglimit
// directives of chrony.conf(5)).
//
// Each source address, masked to a configurable prefix, owns one bucket of
// Burst tokens refilled at one token per 2^Interval seconds. A request that
// finds a token is served. A request that finds none is over the limit and is
// dropped, except that a random one in 2^Leak is answered anyway, so that an
// attacker spoofing a victim's address cannot silence the victim completely,
// and, when Config.KoD is set, the source may get one RATE Kiss-o'-Death
// (RFC 5905 §7.4) per kiss interval instead of silence.
//
// The package is pure: no I/O, no logging, no package-level state. Time and
// the leak draws (NewWithDraw) are inputs. Only the seed of the hash that
// places sources in the table is drawn inside (hash/maphash), on purpose: an
// attacker who knew it could aim sources at one bucket. Tests therefore
// assert properties (counts, binomial bounds), not exact placements.
package ratelimit

import (
	"errors"
	"fmt"
	"unsafe"
)

// ErrConfig is wrapped by every error Config.Validate returns.
var ErrConfig = errors.New("ratelimit: invalid config")

// Limits of the configuration. The interval, burst and leak ranges are
// chrony's, so that a chrony.conf ratelimit line means the same here.
const (
	// MinInterval is chrony's floor: 2^-19 s, 524288 responses per second.
	MinInterval = -19
	// MaxInterval is chrony's ceiling: one response per 4096 s.
	MaxInterval = 12
	// MinBurst: a bucket that holds no token would refuse every request.
	MinBurst = 1
	// MaxBurst is chrony's ceiling; larger bursts let a fresh (possibly
	// spoofed) source draw that many replies before any limit applies.
	MaxBurst = 255
	// MinLeak is chrony's floor: leak 0 would answer every over-limit request
	// and turn the limiter off.
	MinLeak = 1
	// MaxLeak is chrony's ceiling: below one answer in 16 a spoofer can
	// starve the victim it impersonates of time for too long.
	MaxLeak = 4

	// MinPrefixV4 and MinPrefixV6 bound aggregation. Every address in an
	// aggregate shares one budget, so one flooding (or spoofed) address
	// starves all the others: aggregates wider than a typical provider
	// allocation (/16, /32) would let a single host silence an ISP.
	MinPrefixV4 = 16
	MinPrefixV6 = 32

	// MinSize keeps at least two buckets of entries (see ways).
	MinSize = 2 * ways
	// MaxSize is chrony's hard limit of 2^24 clientlog records; at
	// EntryBytes each it is about 1.9 GB, far beyond any sane clientloglimit.
	MaxSize = 1 << 24
)

// EntryBytes is the memory one table entry occupies: its masked address key,
// its last-seen and next-kiss times, its two counters, its token bucket and
// its share of the bucket's lock and counters.
const EntryBytes = int(unsafe.Sizeof(bucket{}) / ways)

// DefaultClientLogLimit is chrony's default clientloglimit in bytes.
const DefaultClientLogLimit = 524288

// DefaultSize is the number of entries chrony documents for its default
// clientloglimit: 4096 addresses.
const DefaultSize = 4096

// Config is the configuration of one Table. The zero value is not valid;
// start from DefaultConfig (or DefaultNTSKEConfig, DefaultCommandConfig) and
// change what the configuration file says.
type Config struct {
	// Interval is the minimum average interval between responses to one
	// source, as a power of two in seconds (chrony "ratelimit interval").
	Interval int
	// Burst is the number of responses a source may get back to back
	// after being quiet (chrony "burst").
	Burst int
	// Leak: one over-limit request in 2^Leak, chosen at random, is answered
	// normally (chrony "leak").
	Leak int
	// KoD lets the table answer an over-limit source with a RATE kiss
	// instead of silence, at most once per kiss interval per source: the
	// larger of 2^Interval seconds and MinKissSpacing. chrony's "kod N"
	// option (N > 0) maps to KoD = true.
	KoD bool
	// Size is the number of entries (sources) the table tracks; New rounds
	// it down to a power of two, as chrony does. Use EntriesForBytes to turn
	// a chrony clientloglimit (bytes) into a Size.
	Size int
	// PrefixV4 and PrefixV6 are the prefix lengths sources are aggregated
	// by: all addresses in one /PrefixV4 (IPv4) or /PrefixV6 (IPv6) share a
	// bucket. IPv4-mapped IPv6 sources count as IPv4.
	PrefixV4 int
	PrefixV6 int
}

// DefaultConfig returns chrony's ratelimit defaults (interval 3, burst 8,
// leak 2, no kisses) with DefaultSize entries, IPv4 sources limited one by
// one and IPv6 sources by /64, the smallest network a site is given.
func DefaultConfig() Config {
	return Config{Interval: 3, Burst: 8, Leak: 2, Size: DefaultSize, PrefixV4: 32, PrefixV6: 64}
}

// DefaultNTSKEConfig returns chrony's ntsratelimit defaults: one NTS-KE
// connection per 64 s on average. Kisses do not exist in NTS-KE.
func DefaultNTSKEConfig() Config {
	c := DefaultConfig()
	c.Interval = 6
	return c
}

// DefaultCommandConfig returns chrony's cmdratelimit defaults: 16 control
// requests per second on average. The control socket has no kisses.
func DefaultCommandConfig() Config {
	c := DefaultConfig()
	c.Interval = -4
	return c
}

// Validate reports every problem with c at once, each wrapping ErrConfig and
// naming the option as chrony.conf spells it.
func (c Config) Validate() error {
	var errs []error
	check := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("%w: %s must be %d..%d, got %d", ErrConfig, name, lo, hi, v))
		}
	}
	check("interval", c.Interval, MinInterval, MaxInterval)
	check("burst", c.Burst, MinBurst, MaxBurst)
	check("leak", c.Leak, MinLeak, MaxLeak)
	check("size (entries)", c.Size, MinSize, MaxSize)
	check("IPv4 prefix", c.PrefixV4, MinPrefixV4, 32)
	check("IPv6 prefix", c.PrefixV6, MinPrefixV6, 128)
	return errors.Join(errs...)
}

// EntriesForBytes converts a memory limit in bytes (chrony's clientloglimit)
// into a table size: the largest power of two of entries that fits, clamped
// to MinSize..MaxSize. chrony's default 524288 bytes, 4096 records in
// chrony, gives 8192 of our entries.
func EntriesForBytes(limit int64) int {
	n := limit / int64(EntryBytes)
	switch {
	case n < MinSize:
		return MinSize
	case n > MaxSize:
		return MaxSize
	}
	return floorPow2(int(n))
}

// floorPow2 returns the largest power of two <= n, for n >= 1.
func floorPow2(n int) int {
	p := 1
	for p <= n/2 {
		p *= 2
	}
	return p
}
