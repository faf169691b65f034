package ntp

import (
	"math"
	"time"
)

// NTP counts seconds from 1900-01-01 UTC in 32 bits, so the count wraps every
// 2^32 s (about 136 years). The first wrap, era 1, starts 2036-02-07 06:28:16 UTC.
// A timestamp alone cannot say which era it is in; RFC 5905 §6 resolves it by
// choosing the era that puts the time closest to a known nearby time (the pivot).
const (
	// unixToNTP is the number of seconds between the NTP epoch (1900) and the
	// Unix epoch (1970): 70 years including 17 leap days.
	unixToNTP = 2208988800
	eraSpan   = 1 << 32
)

// Time64 is the 64-bit NTP timestamp format (RFC 5905 §6): 32 bits of seconds
// since the era start and 32 bits of fraction.
//
//	 0                   1                   2                   3
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Seconds                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Fraction                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Time64 uint64

// Time32 is the 32-bit NTP short format (RFC 5905 §6): 16 bits of seconds and
// 16 bits of fraction, used for root delay and root dispersion.
type Time32 uint32

// Time64From converts t to an NTP timestamp. Times before 1900 or after the
// last era this code handles are still converted modulo the era span: the
// wire format has no room for the era number.
func Time64From(t time.Time) Time64 { return time64(t.Unix(), int64(t.Nanosecond())) }

// time64 converts Unix seconds and nanoseconds in [0, 1e9) as Time64From.
func time64(unixSecs, nanos int64) Time64 {
	secs := unixSecs + unixToNTP
	// Round to the nearest 2^-32 s; a carry into the seconds is handled by the
	// 64-bit addition.
	frac := (uint64(nanos)<<32 + 500_000_000) / 1_000_000_000
	return Time64(uint64(secs)<<32 + frac)
}

// Seconds returns the seconds field.
func (t Time64) Seconds() uint32 { return uint32(t >> 32) }

// Fraction returns the fraction field.
func (t Time64) Fraction() uint32 { return uint32(t) }

// IsZero reports whether both fields are zero, which RFC 5905 reserves to mean
// "unknown" (a client's origin timestamp of zero is never valid).
func (t Time64) IsZero() bool { return t == 0 }

// Time converts t to a time.Time in the era that puts it within 2^31 s
// (about 68 years) of pivot, as RFC 5905 §6 requires. Pass the current time,
// or for a timestamp echoed from a packet the time it was sent.
func (t Time64) Time(pivot time.Time) time.Time {
	pivotNTP := pivot.Unix() + unixToNTP
	// Signed distance from the pivot's position within its era to t's seconds;
	// the int32 conversion picks the nearest era.
	delta := int64(int32(uint32(t>>32) - uint32(uint64(pivotNTP))))
	secs := pivotNTP + delta - unixToNTP
	nanos := (uint64(uint32(t))*1_000_000_000 + 1<<31) >> 32
	return time.Unix(secs, int64(nanos)).UTC()
}

// Sub returns t - u as a duration, assuming both are within 68 years of each
// other (true for any pair of timestamps of one exchange). Era wrap between t
// and u is handled by the two's-complement difference.
func (t Time64) Sub(u Time64) time.Duration {
	d := int64(t - u) // 32.32 fixed point, signed
	secs := d >> 32
	frac := d & 0xffffffff
	return time.Duration(secs)*time.Second + time.Duration((frac*1_000_000_000)>>32)
}

// Add returns t + d.
func (t Time64) Add(d time.Duration) Time64 {
	secs := int64(d / time.Second)
	nanos := int64(d % time.Second)
	fixed := secs<<32 + (nanos<<32)/1_000_000_000
	return t + Time64(uint64(fixed))
}

// Time32From converts a non-negative duration to the short format,
// saturating at the largest value (about 18.2 hours) instead of wrapping, so a
// huge dispersion is never served as a small one. Negative durations become 0.
func Time32From(d time.Duration) Time32 {
	if d <= 0 {
		return 0
	}
	v := (uint64(d)<<16 + 500_000_000) / 1_000_000_000
	if d > 0xffff*time.Second || v > math.MaxUint32 {
		return math.MaxUint32
	}
	return Time32(v)
}

// Duration converts the short format to a duration.
func (s Time32) Duration() time.Duration {
	return time.Duration((uint64(s)*1_000_000_000 + 1<<15) >> 16)
}
