package audit

import (
	"bytes"
	"fmt"
	"os"

	"timegate/audit"
)

// spool reads complete records from the audit file, from an offset up to
// the writer's durable end. It never reads past that end, so it never sees
// a line the writer is still writing.
type spool struct {
	f   *os.File
	off int64  // offset of the next record to return
	buf []byte // bytes read from off on, not yet returned
}

// spoolChunk bounds one read; a record is at most MaxLineLen+1 bytes.
const spoolChunk = 64 << 10

func openSpool(path string, off int64) (*spool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &spool{f: f, off: off}, nil
}

func (s *spool) seek(off int64) {
	s.off = off
	s.buf = s.buf[:0]
}

// item is one record ready to send.
type item struct {
	rec  audit.Record
	line []byte
	end  int64 // offset after the line
}

// next returns the next record below limit; ok false when there is none
// yet. Lines that do not parse are skipped (the verifier reports them; the
// shipper's job is to move what is valid).
func (s *spool) next(limit int64) (item, bool, error) {
	for {
		if i := bytes.IndexByte(s.buf, '\n'); i >= 0 {
			body := s.buf[:i]
			s.off += int64(i + 1)
			line := append([]byte(nil), body...)
			s.buf = s.buf[i+1:]
			r, err := audit.Parse(line)
			if err != nil {
				continue
			}
			return item{rec: r, line: line, end: s.off}, true, nil
		}
		have := s.off + int64(len(s.buf))
		if have >= limit {
			return item{}, false, nil
		}
		if len(s.buf) > audit.MaxLineLen {
			// Longer than any record: drop what we have, read on.
			s.off += int64(len(s.buf))
			s.buf = s.buf[:0]
			continue
		}
		n := min(limit-have, spoolChunk)
		s.buf = append(s.buf, make([]byte, n)...)
		m, err := s.f.ReadAt(s.buf[len(s.buf)-int(n):], have)
		s.buf = s.buf[:len(s.buf)-int(n)+m]
		if int64(m) < n {
			// The durable end promised these bytes: the file was cut or
			// replaced under us.
			return item{}, false, fmt.Errorf("audit file shorter than its durable end (%d < %d): %v", have+int64(m), limit, err)
		}
	}
}

func (s *spool) close() { s.f.Close() }
