package audit

import (
	"bufio"
	"errors"
	"io"
	"os"

	"timegate/audit"
)

// spool reads complete records from the audit file, from an offset up to
// the writer's durable end, so it never sees a partial line.
type spool struct {
	f   *os.File
	br  *bufio.Reader
	off int64 // offset of the next unread byte
}

func openSpool(path string, off int64) (*spool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	s := &spool{f: f}
	s.seek(off)
	return s, nil
}

func (s *spool) seek(off int64) {
	s.off = off
	s.br = bufio.NewReaderSize(io.NewSectionReader(s.f, off, 1<<62), 64<<10)
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
	for s.off < limit {
		line, err := s.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than any record: skip to its end.
			s.off += int64(len(line))
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = s.br.ReadSlice('\n')
				s.off += int64(len(line))
			}
			continue
		}
		if err != nil {
			// The durable end promised complete lines up to limit; the
			// file shrank under us (replaced or cut). Start over there.
			return item{}, false, err
		}
		s.off += int64(len(line))
		body := line[:len(line)-1]
		r, perr := audit.Parse(body)
		if perr != nil {
			continue
		}
		return item{rec: r, line: append([]byte(nil), body...), end: s.off}, true, nil
	}
	return item{}, false, nil
}

func (s *spool) close() { s.f.Close() }
