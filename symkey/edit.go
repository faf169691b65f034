package symkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Edits of a keys file keep every other line — comments, legacy keys, the
// operator's order — byte for byte: the file is often shared with chrony or
// ntpd, and a rewrite from the parsed set would lose what they read and
// timegate ignores.

// Errors of the edits, for callers that explain them.
var (
	ErrKeyExists  = errors.New("symkey: key ID already in the file")
	ErrNoSuchKey  = errors.New("symkey: key ID not in the file")
	ErrGenType    = errors.New("symkey: only AES128 and AES256 keys are generated (RFC 8573)")
	ErrEditBroken = errors.New("symkey: the edited file would not parse")
)

// Generated is a key Generate added.
type Generated struct {
	ID   uint32
	Type string
	// Line is the keys-file line with the secret, for the client's file.
	Line string
}

// Generate appends a new AES-CMAC key to the keys file contents data (read
// from filename, for messages). id 0 picks one more than the highest ID in
// the file; typ is AES128 (default when empty) or AES256, the only types
// minted: legacy digests are read from existing files, never created.
func Generate(filename string, data []byte, id uint32, typ string, rnd io.Reader) ([]byte, Generated, error) {
	set, _, err := Parse(filename, data)
	if err != nil {
		return nil, Generated{}, err
	}
	if typ == "" {
		typ = "AES128"
	}
	t, ok := lookupType(typ)
	if !ok || !t.CMAC() {
		return nil, Generated{}, fmt.Errorf("%w: not %q", ErrGenType, typ)
	}
	if id == 0 {
		for k := range set.All() {
			id = max(id, k.ID())
		}
		if id == 1<<32-1 {
			return nil, Generated{}, fmt.Errorf("%w: %s already holds ID 4294967295: name a free one", ErrKeyExists, filename)
		}
		id++
	}
	if _, taken := set.Lookup(id); taken {
		return nil, Generated{}, fmt.Errorf("%w: key %d is in %s: remove it first or pick another ID", ErrKeyExists, id, filename)
	}
	secret := make([]byte, t.KeySize())
	if _, err := io.ReadFull(rnd, secret); err != nil {
		return nil, Generated{}, fmt.Errorf("symkey: random: %w", err)
	}
	line := strconv.FormatUint(uint64(id), 10) + " " + t.String() + " HEX:" + strings.ToUpper(hex.EncodeToString(secret))
	next := bytes.Clone(data)
	if len(next) > 0 && !bytes.HasSuffix(next, []byte("\n")) {
		next = append(next, '\n')
	}
	next = append(next, line+"\n"...)
	if _, _, err := Parse(filename, next); err != nil {
		return nil, Generated{}, fmt.Errorf("%w: %v", ErrEditBroken, err)
	}
	return next, Generated{ID: id, Type: t.String(), Line: line}, nil
}

// Remove drops key id's line from the keys file contents data.
func Remove(filename string, data []byte, id uint32) ([]byte, error) {
	set, _, err := Parse(filename, data)
	if err != nil {
		return nil, err
	}
	if _, ok := set.Lookup(id); !ok {
		return nil, fmt.Errorf("%w: key %d is not in %s", ErrNoSuchKey, id, filename)
	}
	out := make([]byte, 0, len(data))
	for line := range bytes.Lines(data) {
		// Numerically: "007" is key 7 to the parser too.
		if f := bytes.Fields(line); len(f) > 0 {
			if n, err := strconv.ParseUint(string(f[0]), 10, 32); err == nil && uint32(n) == id {
				continue
			}
		}
		out = append(out, line...)
	}
	return out, nil
}
