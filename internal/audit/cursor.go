package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"timegate/audit"
	"timegate/internal/secfile"
)

// Cursor is the shipper's durable position: the last record the collector
// acknowledged (Seq) and the file offset just after it (Offset).
type Cursor struct {
	Seq    uint64
	Offset int64
}

// cursor file: one line `timegate-audit-cursor v1 SEQ OFFSET`, replaced
// atomically (temp file, fsync, rename, fsync of the directory), so a
// crash leaves the old position or the new one, never a torn one.
const cursorMagic = "timegate-audit-cursor v1"

func saveCursor(path string, c Cursor) error {
	return secfile.WriteAtomic(path, fmt.Appendf(nil, "%s %d %d\n", cursorMagic, c.Seq, c.Offset), 0o600)
}

// loadCursor reads the cursor; a missing file is the start of the log.
func loadCursor(path string) (Cursor, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Cursor{}, nil
	}
	if err != nil {
		return Cursor{}, err
	}
	var c Cursor
	var v string
	if _, err := fmt.Sscanf(string(data), "timegate-audit-cursor %s %d %d\n", &v, &c.Seq, &c.Offset); err != nil || v != "v1" || c.Offset < 0 {
		return Cursor{}, fmt.Errorf("audit: shipping cursor %s is malformed", path)
	}
	return c, nil
}

// checkCursor confirms that the line ending at c.Offset in f is record
// c.Seq; a cursor that does not match the file (the log was replaced or
// cut) is found again by scanning, so a stale cursor can cause duplicates
// but never a silent gap.
func checkCursor(f *os.File, c Cursor) (Cursor, error) {
	if c.Seq == 0 {
		return Cursor{}, nil
	}
	if c.Offset > 0 {
		n := min(c.Offset, int64(audit.MaxLineLen)+1)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, c.Offset-n); err == nil && buf[n-1] == '\n' {
			body := buf[:n-1]
			line := body[bytes.LastIndexByte(body, '\n')+1:]
			if r, err := audit.Parse(line); err == nil && r.Seq == c.Seq {
				return c, nil
			}
		}
	}
	return scanTo(f, c.Seq)
}

// scanTo finds the offset after record seq (or the last record before it).
func scanTo(f *os.File, seq uint64) (Cursor, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<62), 64<<10)
	var c Cursor
	var off int64
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF || errors.Is(err, bufio.ErrBufferFull) {
				return c, nil
			}
			return c, err
		}
		off += int64(len(line))
		r, perr := audit.Parse(line[:len(line)-1])
		if perr != nil {
			continue
		}
		if r.Seq > seq {
			return c, nil
		}
		c = Cursor{Seq: r.Seq, Offset: off}
	}
}
