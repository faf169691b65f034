package audit

import (
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"
)

// stream reads the records of a rotated audit log in order across its
// files: a sealed segment to its end, then the file that follows it, up to
// the live file's durable end. Files are known by the seq of their first
// record, which a segment's name carries and which a reader that opened
// the live file learns from its first line; a rotation the reader did not
// see shows as the live file's first seq moving past the one it holds.
type stream struct {
	path   string
	src    Source
	log    *zap.Logger
	sp     *spool
	first  uint64 // first seq of the file sp reads
	sealed bool   // sp's file was rotated out: it ends at size
	size   int64
	last   uint64 // seq of the last record returned
}

// streamItem is a record and where it ends: in which file, at what offset.
type streamItem struct {
	item
	file uint64
}

func newStream(path string, src Source, log *zap.Logger) *stream {
	return &stream{path: path, src: src, log: log}
}

func (st *stream) close() {
	if st.sp != nil {
		st.sp.close()
		st.sp = nil
	}
}

// openFile opens the file whose first record has seq first (0: the oldest
// file there is) at offset off.
func (st *stream) openFile(first uint64, off int64) error {
	for range 3 { // a rotation between listing and opening moves the live file on
		path, want, err := st.find(first)
		if err != nil {
			return err
		}
		sp, err := openSpool(path, off)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		got, ok := firstSeq(sp.f)
		if !ok {
			got = st.src.Position().First // the live file, before its first record
		}
		if want != 0 && got != want {
			sp.close()
			continue
		}
		st.close()
		st.sp, st.first, st.sealed = sp, got, false
		return nil
	}
	return fmt.Errorf("audit file with first record %d: rotated away while opening it", first)
}

// find returns the path of the file starting at first (0: the oldest) and
// the first seq that file should have (0: whatever the live file has).
func (st *stream) find(first uint64) (string, uint64, error) {
	segs, err := listSegments(st.path)
	if err != nil {
		return "", 0, err
	}
	live := st.src.Position().First
	if first == 0 && len(segs) > 0 && segs[0].first < live {
		return segs[0].path, segs[0].first, nil
	}
	if first == 0 {
		return st.path, 0, nil
	}
	if first == live {
		return st.path, first, nil
	}
	for _, s := range segs {
		if s.first == first {
			return s.path, first, nil
		}
	}
	return "", 0, fmt.Errorf("no audit file starts at seq %d (pruned or moved?)", first)
}

// following returns the first seq of the file after the one at first.
func (st *stream) following(first uint64) (uint64, error) {
	segs, err := listSegments(st.path)
	if err != nil {
		return 0, err
	}
	next := st.src.Position().First
	for _, s := range segs {
		if s.first > first && s.first < next {
			next = s.first
		}
	}
	return next, nil
}

// limit is how far sp's file may be read: the durable end while it is
// live, its whole size once it is sealed (a segment no longer changes).
func (st *stream) limit() (int64, error) {
	if st.sealed {
		return st.size, nil
	}
	pos := st.src.Position()
	if pos.First == st.first {
		return pos.Durable, nil
	}
	fi, err := st.sp.f.Stat()
	if err != nil {
		return 0, err
	}
	st.sealed, st.size = true, fi.Size()
	return st.size, nil
}

// next returns the next record; ok false when there is none yet.
func (st *stream) next() (streamItem, bool, error) {
	for {
		lim, err := st.limit()
		if err != nil {
			return streamItem{}, false, err
		}
		it, ok, err := st.sp.next(lim)
		if err != nil || ok {
			if ok {
				st.last = it.rec.Seq
			}
			return streamItem{it, st.first}, ok, err
		}
		if !st.sealed {
			return streamItem{}, false, nil
		}
		next, err := st.following(st.first)
		if err != nil {
			return streamItem{}, false, err
		}
		if err := st.openFile(next, 0); err != nil {
			return streamItem{}, false, err
		}
		if st.last != 0 && next != st.last+1 {
			st.log.Warn("audit shipping: the next audit file does not continue the last record shipped (segment removed?)",
				zap.Uint64("last_seq", st.last), zap.Uint64("next_first_seq", next))
		}
	}
}

// backlog is the bytes from (file, off) to the live file's durable end.
func (st *stream) backlog(file uint64, off int64) int64 {
	pos := st.src.Position()
	if file == pos.First {
		return pos.Durable - off
	}
	segs, err := listSegments(st.path)
	if err != nil {
		return pos.Durable - off
	}
	total := pos.Durable - off
	for _, s := range segs {
		if s.first >= file && s.first < pos.First {
			if fi, err := os.Stat(s.path); err == nil {
				total += fi.Size()
			}
		}
	}
	return total
}

// seek moves to offset off of the file starting at first.
func (st *stream) seek(first uint64, off int64) error {
	if st.sp != nil && st.first == first {
		st.sp.seek(off)
		return nil
	}
	return st.openFile(first, off)
}

// past moves a cursor whose file is gone on to the start of the file after
// it. Retention deletes a segment only once every record in it was
// delivered (its last seq is below the shipper's pin), so a cursor in a
// segment that is gone stood at that segment's end: nothing is skipped.
func (st *stream) past(c Cursor) Cursor {
	if c.File == 0 || c.File == st.src.Position().First {
		return c
	}
	if path, _, err := st.find(c.File); err == nil {
		if _, err := os.Stat(path); err == nil {
			return c
		}
	}
	next, err := st.following(c.File)
	if err != nil {
		return c
	}
	c.File, c.Offset = next, 0
	return c
}

// locate finds the file c points into and fills in c.File. A cursor that
// matches no file (the log was moved aside and a new chain started, or a
// file restored from a backup) is not trusted: ok is false and shipping
// starts from the oldest file, so a stale cursor can cause duplicates but
// never a silent gap.
func (st *stream) locate(c Cursor) (Cursor, bool) {
	if c == (Cursor{}) {
		return c, true
	}
	try := func(path string) bool {
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		if _, ok := checkCursor(f, c); !ok {
			return false
		}
		first, ok := firstSeq(f)
		c.File = first
		return ok
	}
	if try(st.path) {
		return c, true
	}
	segs, _ := listSegments(st.path)
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].first <= c.Seq {
			if try(segs[i].path) {
				return c, true
			}
			break
		}
	}
	// The segment the cursor ended was pruned after delivery: the file
	// that starts right after it chains onto that very line.
	names := []string{st.path}
	for _, sg := range segs {
		if sg.first == c.Seq+1 {
			names = append(names, sg.path)
		}
	}
	for _, path := range names {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		r, ok := firstRecord(f)
		f.Close()
		if ok && r.Seq == c.Seq+1 && r.Prev == c.Hash.String() {
			c.File, c.Offset = r.Seq, 0
			return c, true
		}
	}
	return Cursor{}, false
}
