package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the record format version, the "v" field.
const Version = 1

// Record is one line of the audit file. Field order is the encoding order.
type Record struct {
	V       int               `json:"v"`
	Seq     uint64            `json:"seq"`
	Time    string            `json:"time"` // RFC 3339, UTC, nanoseconds
	Type    Type              `json:"type"`
	Outcome Outcome           `json:"outcome"`
	Subject Subject           `json:"subject,omitzero"`
	Details map[string]string `json:"details,omitempty"`
	Prev    string            `json:"prev"`
	Sig     string            `json:"sig,omitempty"`
}

// Hash is the SHA-256 of one encoded line, the next record's prev.
type Hash [sha256.Size]byte

// String is the lowercase hex form used in prev.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// HashLine hashes one line (without its newline).
func HashLine(line []byte) Hash { return sha256.Sum256(line) }

// timeLayout is RFC 3339 with a fixed nine-digit fraction, so that the text
// of a time never depends on its trailing zeros.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// FormatTime renders t as records carry it.
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// Errors of Parse.
var (
	ErrTooLong      = errors.New("audit: line longer than MaxLineLen")
	ErrSyntax       = errors.New("audit: not a record")
	ErrNotCanonical = errors.New("audit: not in canonical form")
)

// Encode returns the canonical line for r, without a newline.
func (r *Record) Encode() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Marshal of these field types cannot fail; HTML escaping stays on (the
	// default), it is part of the canonical form.
	if err := enc.Encode(r); err != nil {
		panic("audit: encoding a record: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Parse reads one line (without its newline). It accepts only the canonical
// encoding of a version-1 record with a valid time and prev, so that
// Parse(line).Encode() == line for every line it accepts.
func Parse(line []byte) (Record, error) {
	var r Record
	if len(line) > MaxLineLen {
		return r, ErrTooLong
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if dec.More() {
		return Record{}, fmt.Errorf("%w: data after the record", ErrSyntax)
	}
	if err := r.check(); err != nil {
		return Record{}, err
	}
	if !bytes.Equal(r.Encode(), line) {
		return Record{}, ErrNotCanonical
	}
	return r, nil
}

// check validates the fields whose form Encode does not fix.
func (r *Record) check() error {
	if r.V != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrSyntax, r.V, Version)
	}
	if r.Seq == 0 {
		return fmt.Errorf("%w: seq 0", ErrSyntax)
	}
	t, err := time.Parse(timeLayout, r.Time)
	if err != nil || FormatTime(t) != r.Time {
		return fmt.Errorf("%w: bad time %q", ErrSyntax, r.Time)
	}
	if r.Type == "" || r.Outcome == "" {
		return fmt.Errorf("%w: empty type or outcome", ErrSyntax)
	}
	if _, err := parseHash(r.Prev); err != nil {
		return err
	}
	return nil
}

func parseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) || hex.EncodeToString(b) != s {
		return h, fmt.Errorf("%w: bad prev %q", ErrSyntax, s)
	}
	copy(h[:], b)
	return h, nil
}

// ParsedTime returns the record's time (valid after Parse).
func (r *Record) ParsedTime() time.Time {
	t, _ := time.Parse(timeLayout, r.Time)
	return t
}
