package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"timegate/internal/secfile"
	"timegate/upstream"
)

// dumpSuffix names timegate's dump files. chronyd writes NAME.dat in its dumpdir with
// another format; a different suffix lets both share a directory without either reading
// the other's files.
const dumpSuffix = ".tgdump"

// dumpKey names what an association's samples belong to: for NTS the KE server (the NTP
// address may change with every NTS-KE; an NTS pool's addresses are each a KE server of
// their own), otherwise the NTP address, and in both cases how the association
// authenticates, so samples taken without authentication are never restored into an
// authenticated association.
func (a *assoc) dumpKey() string {
	switch {
	case a.spec.NTS && a.keIP.IsValid():
		return fmt.Sprintf("nts %s@%s", a.spec.Host, netip.AddrPortFrom(a.keIP, uint16(a.spec.NTSPort)))
	case a.spec.NTS:
		return fmt.Sprintf("nts %s:%d", a.spec.Host, a.spec.NTSPort)
	case a.spec.KeyID != 0:
		return fmt.Sprintf("%s key %d", a.addr, a.spec.KeyID)
	}
	return a.addr.String() + " none"
}

// dumpName is the file name for key: the key with every character but letters, digits,
// dots and dashes made '_', or its SHA-256 when that would be too long a name.
func dumpName(key string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, key)
	if len(name) > 200 {
		sum := sha256.Sum256([]byte(key))
		name = hex.EncodeToString(sum[:])
	}
	return name + dumpSuffix
}

// restoreDump loads the association's dump file, if the previous run left one, into its
// fresh state machine at local time now, and removes the file as chronyd does: samples
// are only ever restored once, so a crash later in this run cannot bring back older ones.
// A file that cannot be used is ignored with a warning.
func (r *runner) restoreDump(a *assoc, now time.Time) {
	if r.opts.DumpDir == "" || r.opts.Discipliner != nil || a.src == nil {
		return
	}
	key := a.dumpKey()
	path := filepath.Join(r.opts.DumpDir, dumpName(key))
	data, err := readStateFile(path, upstream.MaxDumpFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		if rmErr := os.Remove(path); rmErr != nil {
			r.log.Warn("cannot remove the dump file after reading it", zap.Error(rmErr))
		}
	}
	var d upstream.SourceDump
	if err == nil {
		d, err = upstream.ParseSourceDump(data)
	}
	if err == nil && d.Key != key {
		err = fmt.Errorf("it belongs to %q", d.Key)
	}
	if err != nil {
		r.log.Warn("dump file ignored", zap.String("source", a.String()), zap.String("file", path), zap.Error(err))
		return
	}
	n := a.src.Restore(d, now)
	r.log.Info("source state restored from dumpdir", zap.String("source", a.String()),
		zap.Int("samples", n), zap.Duration("age", now.Sub(d.Saved).Round(time.Millisecond)))
}

// saveDumps writes every association's state at the clean stop, mode 0600 and atomically.
func (r *runner) saveDumps() {
	if r.opts.DumpDir == "" || r.opts.Discipliner != nil {
		return
	}
	if err := os.MkdirAll(r.opts.DumpDir, 0o700); err != nil {
		r.log.Warn("cannot create dumpdir", zap.Error(err))
		return
	}
	for _, a := range r.assocs {
		if a.src == nil || a.removed {
			continue
		}
		d, ok := a.src.Dump(a.dumpKey())
		if !ok {
			continue
		}
		data, _ := d.AppendText(nil)
		if err := secfile.WriteAtomic(filepath.Join(r.opts.DumpDir, dumpName(d.Key)), data, 0o600); err != nil {
			r.log.Warn("cannot save the source state", zap.String("source", a.String()), zap.Error(err))
		}
	}
}
