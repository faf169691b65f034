package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"timegate/internal/control"
	"timegate/internal/secfile"
	"timegate/symkey"
)

// keysFileMode: the keys file holds shared secrets (RFC 8573 keys).
const keysFileMode = 0o600

// symKeys lists, adds or removes keys in the `keyfile`, then reloads, so
// that the responder and a `key ID` client of timegate agree at once. The
// file is edited line by line — comments and other keys stay as the
// operator wrote them — and written atomically with mode 0600.
func (g *Gateway) symKeys(cmd string, args json.RawMessage) (any, error) {
	// Two edits at once would each write the file they read: one key lost.
	g.keysMu.Lock()
	defer g.keysMu.Unlock()
	path := g.cfg.Load().KeyFile
	if path == "" {
		return nil, control.Failed("no keyfile directive: add `keyfile /etc/timegate/keys` to the configuration and reload")
	}
	data, err := secfile.ReadPrivateOwned(path, trustedOwners(g.cfg.Load())...)
	if err != nil && !(cmd == CmdSymGen && errors.Is(err, fs.ErrNotExist)) {
		return nil, control.Failed("keyfile %s: %v", path, err)
	}
	set, _, err := symkey.Parse(path, data)
	if err != nil {
		return nil, control.Failed("%v", err)
	}
	switch cmd {
	case CmdSymList:
		out := SymList{File: path, Keys: []SymKey{}}
		for k := range set.All() {
			out.Keys = append(out.Keys, SymKey{ID: k.ID(), Type: k.Type().String(), Legacy: k.Legacy()})
		}
		slices.SortFunc(out.Keys, func(a, b SymKey) int { return int(int64(a.ID) - int64(b.ID)) })
		return out, nil
	case CmdSymGen:
		var a SymGenArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		return g.genSymKey(path, data, set, a)
	default:
		var a SymRemoveArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		return g.removeSymKey(path, data, set, a.ID)
	}
}

// genKeySize is the secret size of a type gatectl generates: RFC 8573's
// AES-CMAC only. Legacy digests are read from existing files, never minted.
func genKeySize(typ string) (int, bool) {
	switch typ {
	case "AES128":
		return 16, true
	case "AES256":
		return 32, true
	}
	return 0, false
}

func (g *Gateway) genSymKey(path string, data []byte, set *symkey.Set, a SymGenArgs) (any, error) {
	if a.Type == "" {
		a.Type = "AES128"
	}
	a.Type = strings.ToUpper(a.Type)
	size, ok := genKeySize(a.Type)
	if !ok {
		return nil, control.Failed("key type %q: gatectl generates AES128 or AES256 (RFC 8573)", a.Type)
	}
	if a.ID == 0 {
		for k := range set.All() {
			a.ID = max(a.ID, k.ID())
		}
		a.ID++
	}
	if _, taken := set.Lookup(a.ID); taken {
		return nil, control.Failed("key %d already exists in %s: remove it first or pick another ID", a.ID, path)
	}
	secret := make([]byte, size)
	if _, err := rand.Read(secret); err != nil {
		return nil, control.Failed("random: %v", err)
	}
	line := strconv.FormatUint(uint64(a.ID), 10) + " " + a.Type + " HEX:" + strings.ToUpper(hex.EncodeToString(secret))
	next := data
	if len(next) > 0 && !bytes.HasSuffix(next, []byte("\n")) {
		next = append(next, '\n')
	}
	next = append(next, line+"\n"...)
	if err := g.writeKeys(path, next); err != nil {
		return nil, err
	}
	return SymGenResult{ID: a.ID, Type: a.Type, Line: line, File: path}, nil
}

func (g *Gateway) removeSymKey(path string, data []byte, set *symkey.Set, id uint32) (any, error) {
	if _, ok := set.Lookup(id); !ok {
		return nil, control.Failed("key %d is not in %s", id, path)
	}
	var out []byte
	for line := range bytes.Lines(data) {
		if f := bytes.Fields(line); len(f) > 0 && string(f[0]) == strconv.FormatUint(uint64(id), 10) {
			continue
		}
		out = append(out, line...)
	}
	if err := g.writeKeys(path, out); err != nil {
		return nil, err
	}
	return SymList{File: path, Keys: []SymKey{}}, nil
}

// writeKeys checks the new contents parse, writes them atomically and
// reloads. A reload refused for another reason leaves the new file in place
// and says so: the running keys are then the old ones until it succeeds.
func (g *Gateway) writeKeys(path string, data []byte) error {
	set, _, err := symkey.Parse(path, data)
	if err == nil {
		err = checkKeyTypes(g.cfg.Load(), path, set)
	}
	if err != nil {
		return control.Failed("the edited keys file would not load (not written): %v", err)
	}
	if err := secfile.WriteAtomic(path, data, keysFileMode); err != nil {
		return control.Failed("writing %s: %v", path, err)
	}
	if _, err := g.reload(); err != nil {
		return control.Failed("%s written, but the reload was refused (the previous keys stay in use): %v", path, err)
	}
	return nil
}
