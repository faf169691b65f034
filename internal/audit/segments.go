package audit

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"timegate/audit"
)

// segment is one sealed file of a rotated audit log.
type segment struct {
	path  string
	first uint64 // seq of its first record (from its name)
}

// listSegments returns path's sealed segments, oldest first. A missing
// directory is no segments.
func listSegments(path string) ([]segment, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, e := range entries {
		if first, ok := audit.ParseSegmentName(path, e.Name()); ok && e.Type().IsRegular() {
			segs = append(segs, segment{path: filepath.Join(filepath.Dir(path), e.Name()), first: first})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	return segs, nil
}

// firstSeq returns the seq of f's first record; false when f holds no
// complete valid first line (an empty file).
func firstSeq(f *os.File) (uint64, bool) {
	r, ok := firstRecord(f)
	return r.Seq, ok
}

// firstRecord returns f's first record; false when f holds no complete
// valid first line.
func firstRecord(f *os.File) (audit.Record, bool) {
	buf := make([]byte, audit.MaxLineLen+1)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return audit.Record{}, false
	}
	nl := bytes.IndexByte(buf[:n], '\n')
	if nl < 0 {
		return audit.Record{}, false
	}
	r, err := audit.Parse(buf[:nl])
	if err != nil {
		return audit.Record{}, false
	}
	return r, true
}
