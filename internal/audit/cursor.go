package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"timegate/audit"
	"timegate/internal/secfile"
)

// Cursor is the shipper's durable position: the last record the collector
// acknowledged (Seq), the file offset just after it (Offset) and the
// SHA-256 of its line (Hash), which ties the position to this file's
// content and not merely to a number.
type Cursor struct {
	Seq    uint64
	Offset int64 // 0: the start of File, which follows the line of Seq
	Hash   audit.Hash
	// File is the first seq of the file Offset is in (a segment's name
	// holds it). Not saved: loading finds the file by the line's content.
	File uint64
}

// cursor file: one line `timegate-audit-cursor v1 SEQ OFFSET HASH`,
// replaced atomically (temp file, fsync, rename, fsync of the directory),
// so a crash leaves the old position or the new one, never a torn one.
const cursorMagic = "timegate-audit-cursor v1"

func saveCursor(path string, c Cursor) error {
	return secfile.WriteAtomic(path, fmt.Appendf(nil, "%s %d %d %s\n", cursorMagic, c.Seq, c.Offset, c.Hash), 0o600)
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
	bad := fmt.Errorf("audit: shipping cursor %s is malformed (delete it to re-ship the whole log)", path)
	f := strings.Fields(string(data))
	if len(f) != 5 || strings.Join(f[:2], " ") != cursorMagic {
		return Cursor{}, bad
	}
	var c Cursor
	c.Seq, err = strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return Cursor{}, bad
	}
	if c.Offset, err = strconv.ParseInt(f[3], 10, 64); err != nil || c.Offset < 0 {
		return Cursor{}, bad
	}
	h, err := hex.DecodeString(f[4])
	if err != nil || len(h) != len(c.Hash) {
		return Cursor{}, bad
	}
	copy(c.Hash[:], h)
	return c, nil
}

// checkCursor confirms that the line ending at c.Offset in f is record
// c.Seq with hash c.Hash.
func checkCursor(f *os.File, c Cursor) (Cursor, bool) {
	if c == (Cursor{}) {
		return c, true
	}
	if c.Offset <= 0 {
		return Cursor{}, false
	}
	n := min(c.Offset, int64(audit.MaxLineLen)+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, c.Offset-n); err != nil || buf[n-1] != '\n' {
		return Cursor{}, false
	}
	body := buf[:n-1]
	line := body[bytes.LastIndexByte(body, '\n')+1:]
	if r, err := audit.Parse(line); err != nil || r.Seq != c.Seq || audit.HashLine(line) != c.Hash {
		return Cursor{}, false
	}
	return c, true
}
