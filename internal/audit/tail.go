package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"

	"timegate/audit"
)

// tailState is what the writer learns from an existing file: where the
// chain stands, and what a crash left after the last complete line.
type tailState struct {
	chain audit.Chain
	size  int64 // bytes of complete lines (the torn part excluded)
	torn  []byte
}

// readTail finds the last complete record of f. Bytes after the last
// newline are a torn write (the process or machine died inside a write):
// they were never a record, never fsynced as one and never shipped. The
// writer cuts them off and records that it did (an audit.recovered record
// with their length and SHA-256), so the chain stays verifiable and the cut
// is itself on the record. A complete last line that is not a valid record
// is not a crash artefact but damage or tampering: the writer then refuses
// to start rather than chain onto it.
func readTail(f *os.File) (tailState, error) {
	fi, err := f.Stat()
	if err != nil {
		return tailState{}, err
	}
	size := fi.Size()
	if size == 0 {
		return tailState{}, nil
	}
	// Two maximal lines: a torn one and the complete one before it.
	window := min(size, 2*int64(audit.MaxLineLen)+2)
	buf := make([]byte, window)
	if _, err := f.ReadAt(buf, size-window); err != nil && err != io.EOF {
		return tailState{}, err
	}
	st := tailState{size: size}
	if nl := bytes.LastIndexByte(buf, '\n'); nl != len(buf)-1 {
		if nl < 0 && window == size {
			// Only a torn first line: the file holds no record yet.
			return tailState{size: 0, torn: buf}, nil
		}
		if nl < 0 {
			return tailState{}, fmt.Errorf("last %d bytes hold no line end: not an audit file", window)
		}
		st.torn = bytes.Clone(buf[nl+1:])
		st.size -= int64(len(st.torn))
		buf = buf[:nl+1]
	}
	body := buf[:len(buf)-1]
	start := bytes.LastIndexByte(body, '\n') + 1
	if start == 0 && int64(len(buf)) < st.size {
		return tailState{}, fmt.Errorf("last line longer than %d bytes", audit.MaxLineLen)
	}
	st.chain, _, err = audit.Resume(body[start:])
	if err != nil {
		return tailState{}, fmt.Errorf("last record (ending at byte %d) is not valid, so the chain cannot be resumed; "+
			"verify the file with gatectl audit verify and move it aside: %w", st.size, err)
	}
	return st, nil
}

// recoveredEvent describes a cut torn tail.
func recoveredEvent(torn []byte) audit.Event {
	h := sha256.Sum256(torn)
	return audit.Event{Type: audit.TypeRecovered, Outcome: audit.OutcomeWarning, Details: map[string]string{
		"torn_bytes":  strconv.Itoa(len(torn)),
		"torn_sha256": hex.EncodeToString(h[:]),
		"why":         "incomplete last line after a crash was cut off before appending",
	}}
}
