package leap

import (
	"encoding/binary"
	"fmt"
	"time"
)

// TZif layout (RFC 8536 §3): a 44-octet header, then the data block whose
// sizes the header's six counts give. Version 2 and later repeat header and
// data with 64-bit times after the version 1 block; those are what we read.
//
//	+------+---+----------+--------+--------+-------+-------+-------+-------+
//	| TZif |ver| 15 unused| isutcnt|isstdcnt|leapcnt|timecnt|typecnt|charcnt|
//	+------+---+----------+--------+--------+-------+-------+-------+-------+
//	   4     1      15        4        4       4       4       4       4
const tzifHeaderLen = 44

// ParseTZif reads the leap-second records of a TZif file (RFC 8536), such as
// /usr/share/zoneinfo/right/UTC. Each record gives the time of a leap in the
// file's leap-counting timescale and the total correction after it; the
// POSIX midnight is that time minus the correction before it. A version 4
// file whose last record repeats the previous correction marks the table's
// expiry (RFC 8536bis); other files carry no expiry, and Table.Expires is
// zero.
func ParseTZif(data []byte) (*Table, error) {
	if len(data) > MaxFileSize {
		return nil, ErrTooLarge
	}
	h, err := tzifHeader(data)
	if err != nil {
		return nil, err
	}
	timeSize := 4
	body := data[tzifHeaderLen:]
	if h.version >= '2' {
		// Skip the version 1 block to the 64-bit one.
		n := h.dataLen(4)
		if n < 0 || n > len(body) {
			return nil, fmt.Errorf("%w: TZif version 1 block truncated", ErrSyntax)
		}
		if h, err = tzifHeader(body[n:]); err != nil {
			return nil, err
		}
		body = body[n+tzifHeaderLen:]
		timeSize = 8
	}
	if n := h.dataLen(timeSize); n < 0 || n > len(body) {
		return nil, fmt.Errorf("%w: TZif data block truncated", ErrSyntax)
	}
	if h.leapcnt > MaxEntries+1 {
		return nil, ErrTooLarge
	}
	off := h.timecnt*timeSize + h.timecnt + h.typecnt*6 + h.charcnt
	recs := body[off : off+h.leapcnt*(timeSize+4)]
	tb := &Table{}
	prevCorr := 0
	var prevAt time.Time
	for i := 0; i < h.leapcnt; i++ {
		r := recs[i*(timeSize+4):]
		var occ int64
		if timeSize == 8 {
			occ = int64(binary.BigEndian.Uint64(r))
		} else {
			occ = int64(int32(binary.BigEndian.Uint32(r)))
		}
		corr := int(int32(binary.BigEndian.Uint32(r[timeSize:])))
		if occ < 0 || occ > 1<<40 {
			return nil, fmt.Errorf("%w: TZif leap record %d: time %d out of range", ErrSyntax, i, occ)
		}
		at := time.Unix(occ-int64(prevCorr), 0).UTC()
		if corr == prevCorr && i == h.leapcnt-1 && i > 0 {
			// Version 4 expiry marker: no leap, the table is good until here.
			tb.Expires = at
			break
		}
		if i > 0 && !at.After(prevAt) {
			return nil, fmt.Errorf("%w: TZif leap record %d", ErrOrder, i)
		}
		tb.Entries = append(tb.Entries, Entry{At: at, TAI: BaseTAI + corr})
		prevCorr, prevAt = corr, at
	}
	if len(tb.Entries) == 0 {
		return nil, fmt.Errorf("%w: the TZif file has no leap-second records (not a right/ zone?)", ErrSyntax)
	}
	if tb.Entries[0].TAI-BaseTAI != 1 && tb.Entries[0].TAI-BaseTAI != -1 {
		return nil, fmt.Errorf("%w: first TZif leap correction must be ±1", ErrSyntax)
	}
	if err := tb.check(); err != nil {
		return nil, err
	}
	// Table entries begin with the base, as in leap-seconds.list.
	tb.Entries = append([]Entry{{At: time.Date(1972, 1, 1, 0, 0, 0, 0, time.UTC), TAI: BaseTAI}}, tb.Entries...)
	if !tb.Entries[1].At.After(tb.Entries[0].At) {
		return nil, fmt.Errorf("%w: TZif leap before 1972", ErrOrder)
	}
	return tb, nil
}

type tzifCounts struct {
	version                                               byte
	isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt int
}

func tzifHeader(b []byte) (tzifCounts, error) {
	if len(b) < tzifHeaderLen || string(b[:4]) != "TZif" {
		return tzifCounts{}, fmt.Errorf("%w: not a TZif file", ErrSyntax)
	}
	c := tzifCounts{version: b[4]}
	if c.version != 0 && (c.version < '2' || c.version > '9') {
		return tzifCounts{}, fmt.Errorf("%w: unknown TZif version %q", ErrSyntax, c.version)
	}
	n := [6]int{}
	for i := range n {
		v := binary.BigEndian.Uint32(b[20+4*i:])
		if v > MaxFileSize {
			return tzifCounts{}, fmt.Errorf("%w: TZif count %d too large", ErrSyntax, v)
		}
		n[i] = int(v)
	}
	c.isutcnt, c.isstdcnt, c.leapcnt, c.timecnt, c.typecnt, c.charcnt = n[0], n[1], n[2], n[3], n[4], n[5]
	return c, nil
}

// dataLen is the data block's length for the given transition-time size.
func (c tzifCounts) dataLen(timeSize int) int {
	return c.timecnt*timeSize + c.timecnt + c.typecnt*6 + c.charcnt + c.leapcnt*(timeSize+4) + c.isstdcnt + c.isutcnt
}
