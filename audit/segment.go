package audit

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// A rotated audit log is a set of files: sealed segments named
// PATH-NNNNNNNNNNNN (the seq of their first record, zero-padded so that a
// shell glob lists them in order) and the live file PATH. The chain runs
// on across them: a segment ends with a signed checkpoint, and the next
// file starts with a TypeSegment record whose prev is that checkpoint's
// hash.

// segmentDigits pads segment names; a longer seq just makes a longer name.
const segmentDigits = 12

// SegmentName is the name a file holding records from seq first on gets
// when it is rotated out of path.
func SegmentName(path string, first uint64) string {
	return fmt.Sprintf("%s-%0*d", path, segmentDigits, first)
}

// ParseSegmentName returns the first seq of the segment name (a base name
// in path's directory, or a whole path), or false when name is not one of
// path's segments.
func ParseSegmentName(path, name string) (uint64, bool) {
	prefix := filepath.Base(path) + "-"
	name = filepath.Base(name)
	digits, ok := strings.CutPrefix(name, prefix)
	if !ok || len(digits) < segmentDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	// Only the spelling SegmentName gives: no other file in the directory
	// (a copy with an extra leading zero, say) is ever taken for a segment,
	// and so never deleted by retention.
	if err != nil || n == 0 || filepath.Base(SegmentName(path, n)) != name {
		return 0, false
	}
	return n, true
}
