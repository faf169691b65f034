package gateway

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"

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
	if cmd != CmdSymList {
		// A root gatectl may be editing the same file itself.
		if unlock, err := secfile.LockDir(path); err == nil {
			defer unlock()
		}
	}
	data, err := secfile.ReadPrivateOwned(path, trustedOwners(g.cfg.Load())...)
	if err != nil && !(cmd == CmdSymGen && errors.Is(err, fs.ErrNotExist)) {
		return nil, control.Failed("keyfile %s: %v", path, err)
	}
	switch cmd {
	case CmdSymList:
		set, _, err := symkey.Parse(path, data)
		if err != nil {
			return nil, control.Failed("%v", err)
		}
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
		return g.genSymKey(path, data, a)
	default:
		var a SymRemoveArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		return g.removeSymKey(path, data, a.ID)
	}
}

func (g *Gateway) genSymKey(path string, data []byte, a SymGenArgs) (any, error) {
	next, k, err := symkey.Generate(path, data, a.ID, a.Type, rand.Reader)
	if err != nil {
		return nil, control.Failed("%v", err)
	}
	if err := g.writeKeys(path, next); err != nil {
		return nil, err
	}
	return SymGenResult{ID: k.ID, Type: k.Type, Line: k.Line, File: path}, nil
}

func (g *Gateway) removeSymKey(path string, data []byte, id uint32) (any, error) {
	next, err := symkey.Remove(path, data, id)
	if err != nil {
		return nil, control.Failed("%v", err)
	}
	if err := g.writeKeys(path, next); err != nil {
		return nil, err
	}
	return SymList{File: path, Keys: []SymKey{}}, nil
}

// writeKeys checks the new contents load, writes them atomically keeping
// the file's owner and mode, and reloads. A reload refused for another
// reason leaves the new file in place and says so: the running keys are
// then the old ones until it succeeds.
func (g *Gateway) writeKeys(path string, data []byte) error {
	set, _, err := symkey.Parse(path, data)
	if err == nil {
		err = checkKeyTypes(g.cfg.Load(), path, set)
	}
	if err != nil {
		return control.Failed("the edited keys file would not load (not written): %v", err)
	}
	if err := secfile.Replace(path, data, keysFileMode); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return &control.Error{Code: control.CodeNoWrite, Msg: fmt.Sprintf("writing %s: %v (the daemon runs unprivileged: run gatectl as root, which then edits the file itself and asks for a reload)", path, err)}
		}
		return control.Failed("writing %s: %v", path, err)
	}
	if _, err := g.reload(); err != nil {
		return control.Failed("%s written, but the reload was refused (the previous keys stay in use): %v", path, err)
	}
	return nil
}
