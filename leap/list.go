package leap

import (
	"bytes"
	"crypto/sha1" // the leap-seconds.list format fixes SHA-1; it detects corruption and careless edits, not forgery
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ntpEpochOffset is the NTP era 0 epoch (1900-01-01) in Unix seconds.
const ntpEpochOffset = -2208988800

// ParseList parses a leap-seconds.list file as the IERS and NIST publish it
// (and tzdata ships it):
//
//	#$	3960835200            last update, NTP seconds
//	#@	3991593600            expiry, NTP seconds
//	2272060800	10	# 1 Jan 1972   from this NTP second, TAI − UTC = 10
//	…
//	#h	49db2447 571e5e1b 2f002a53 9c8da8e4 39b8e49e
//
// The #h line is the SHA-1 of the digits of the #$ and #@ lines and of the
// data lines before their comments, as ntpd checks it; it is required and
// must match, so a truncated download or a hand edit is refused. The five
// words are compared as numbers because the publishers print them without
// leading zeros. Expiry is not checked here: the caller compares
// Table.Expires with the time.
func ParseList(data []byte) (*Table, error) {
	if len(data) > MaxFileSize {
		return nil, ErrTooLarge
	}
	tb := &Table{}
	h := sha1.New()
	var want []uint32
	var haveUpdated, haveExpires bool
	for n, line := range bytes.Split(data, []byte("\n")) {
		lineNo := n + 1
		line = bytes.TrimRight(line, "\r")
		switch {
		case bytes.HasPrefix(line, []byte("#$")), bytes.HasPrefix(line, []byte("#@")):
			t, err := ntpSeconds(bytes.TrimSpace(line[2:]))
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrSyntax, lineNo, err)
			}
			hashDigits(h, line[2:])
			if line[1] == '$' {
				tb.Updated, haveUpdated = t, true
			} else {
				tb.Expires, haveExpires = t, true
			}
		case bytes.HasPrefix(line, []byte("#h")):
			if want != nil {
				return nil, fmt.Errorf("%w: line %d: second hash line", ErrSyntax, lineNo)
			}
			w, err := hashWords(line[2:])
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrSyntax, lineNo, err)
			}
			want = w
		case len(bytes.TrimSpace(line)) == 0 || line[0] == '#':
		default:
			if want != nil {
				return nil, fmt.Errorf("%w: line %d: data after the hash line", ErrSyntax, lineNo)
			}
			e, err := dataLine(line)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrSyntax, lineNo, err)
			}
			if len(tb.Entries) >= MaxEntries {
				return nil, ErrTooLarge
			}
			d, _, _ := bytes.Cut(line, []byte("#"))
			hashDigits(h, d)
			tb.Entries = append(tb.Entries, e)
		}
	}
	switch {
	case want == nil:
		return nil, ErrNoHash
	case !haveUpdated || !haveExpires:
		return nil, fmt.Errorf("%w: missing #$ (update) or #@ (expiry) line", ErrSyntax)
	case len(tb.Entries) == 0:
		return nil, fmt.Errorf("%w: no leap entries", ErrSyntax)
	}
	sum := h.Sum(nil)
	for i, w := range want {
		if uint32(sum[4*i])<<24|uint32(sum[4*i+1])<<16|uint32(sum[4*i+2])<<8|uint32(sum[4*i+3]) != w {
			return nil, ErrHash
		}
	}
	if err := tb.check(); err != nil {
		return nil, err
	}
	if tb.Entries[0].TAI != BaseTAI {
		return nil, fmt.Errorf("%w: first entry must set TAI − UTC = %d, got %d", ErrSyntax, BaseTAI, tb.Entries[0].TAI)
	}
	return tb, nil
}

// hashDigits feeds the decimal digits of b, and nothing else, to h.
func hashDigits(h interface{ Write([]byte) (int, error) }, b []byte) {
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j > i {
			h.Write(b[i:j])
			i = j
			continue
		}
		i++
	}
}

// ntpSeconds reads one NTP-era-0 timestamp in whole seconds.
func ntpSeconds(b []byte) (time.Time, error) {
	v, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad NTP time %q", truncate(b))
	}
	return time.Unix(int64(v)+ntpEpochOffset, 0).UTC(), nil
}

// dataLine reads "NTPSECONDS TAI [# comment]".
func dataLine(line []byte) (Entry, error) {
	d, _, _ := bytes.Cut(line, []byte("#"))
	f := bytes.Fields(d)
	if len(f) != 2 {
		return Entry{}, fmt.Errorf("want NTP-time TAI-offset, got %q", truncate(line))
	}
	t, err := ntpSeconds(f[0])
	if err != nil {
		return Entry{}, err
	}
	tai, err := strconv.ParseUint(string(f[1]), 10, 16)
	if err != nil || tai > 1000 {
		return Entry{}, fmt.Errorf("bad TAI offset %q", truncate(f[1]))
	}
	return Entry{At: t, TAI: int(tai)}, nil
}

// hashWords reads the five 32-bit hexadecimal words of a #h line.
func hashWords(b []byte) ([]uint32, error) {
	f := bytes.Fields(b)
	if len(f) != 5 {
		return nil, errors.New("hash line needs five hexadecimal words")
	}
	w := make([]uint32, 5)
	for i, s := range f {
		v, err := strconv.ParseUint(string(s), 16, 32)
		if err != nil {
			return nil, fmt.Errorf("bad hash word %q", truncate(s))
		}
		w[i] = uint32(v)
	}
	return w, nil
}

// truncate keeps error messages about hostile input short.
func truncate(b []byte) string {
	const n = 40
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
