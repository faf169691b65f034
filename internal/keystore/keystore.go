// Package keystore keeps the NTS cookie key ring on disk and rotates it on a
// schedule (RFC 8915 §6). It is the edge around nts.KeyRing: the ring itself
// is pure and immutable; this package reads and writes the file in the
// ntsdumpdir directory (chrony's directive), swaps rings atomically, and never
// lets a key seal cookies before the ring holding it is safely on disk.
package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"timegate/internal/secfile"
	"timegate/nts"
)

const (
	// FileName is the ring file inside the ntsdumpdir directory.
	FileName = "ntskeys.bin"
	// DefaultInterval is how often the current key is replaced: daily, as
	// chrony's ntsrotate default, so a stolen master key exposes at most a
	// day of new cookies while nts.DefaultKeep days of cookies stay valid.
	DefaultInterval = 24 * time.Hour
	// retryDelay spaces attempts after a failed rotation (a full disk, say):
	// the old ring keeps serving meanwhile, all its keys still valid.
	retryDelay = time.Minute
	// fileMode: the file holds master keys, readable by the daemon only.
	fileMode = 0o600
)

// ErrNotLoaded is returned by Rotate before Load.
var ErrNotLoaded = errors.New("keystore: no key ring loaded")

// Load reads the ring at path. A file that group or others can access is
// refused, as is a corrupt one (nts.ErrKeyRing): its keys may have leaked,
// or guessing would silently orphan every outstanding cookie.
//
// The file must be owned by root, the effective user or one of owners (see
// secfile.ReadPrivateOwned).
func Load(path string, owners ...int) (*nts.KeyRing, error) {
	data, err := secfile.ReadPrivateOwned(path, owners...)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	r, err := nts.UnmarshalKeyRing(data)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", path, err)
	}
	return r, nil
}

// Save writes ring to path atomically (temporary file, fsync, rename, fsync
// of the directory) with mode 0600, so a crash leaves the old ring or the new
// one, never a torn file.
func Save(path string, ring *nts.KeyRing) error {
	data, err := ring.MarshalBinary()
	if err != nil {
		return err
	}
	if err := secfile.WriteAtomic(path, data, fileMode); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// Rotator owns the live key ring. Zero values and nil fields take defaults,
// as in crypto/tls.Config. Call Load once, then Run in its own goroutine;
// Ring may be called from any goroutine at any time after Load.
type Rotator struct {
	Dir      string        // the ntsdumpdir directory
	Interval time.Duration // 0 means DefaultInterval
	// Manual turns scheduled rotation off (chrony's `ntsrotate 0`): only
	// Rotate, the operator's command, rotates.
	Manual bool
	Keep   int              // sealing keys kept; 0 means nts.DefaultKeep
	Now    func() time.Time // nil means time.Now
	Rand   io.Reader        // nil means crypto/rand
	Log    *zap.Logger      // nil means no logging
	// OnRotate, when set, is told of each rotation after the new ring is
	// saved and in service (the audit trail records it); it must not block.
	OnRotate func(prev, next *nts.KeyRing)
	// Owners are the users besides root and the effective user who may own
	// the ring file: the user a root start drops to, which writes it.
	Owners []int

	mu   sync.Mutex // serialises Load and Rotate: one writer of the file
	ring atomic.Pointer[nts.KeyRing]
}

// Path is the ring file's path.
func (r *Rotator) Path() string { return filepath.Join(r.Dir, FileName) }

// Ring returns the ring to use now; nil before Load. Its result is what
// nts.ServerConfig.Ring wants: a rotation applies to the next connection.
func (r *Rotator) Ring() *nts.KeyRing { return r.ring.Load() }

// Load reads the ring file, or creates and saves a new ring when there is
// none, so that cookies issued before a restart still open after it.
func (r *Rotator) Load() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ring, err := Load(r.Path(), r.Owners...)
	if errors.Is(err, fs.ErrNotExist) {
		if ring, err = nts.NewKeyRing(r.now(), r.rand()); err != nil {
			return fmt.Errorf("keystore: new key ring: %w", err)
		}
		if err = Save(r.Path(), ring); err != nil {
			return err
		}
		r.log().Info("created NTS key ring", zap.String("path", r.Path()))
	} else if err != nil {
		return err
	}
	r.ring.Store(ring)
	return nil
}

// Rotate makes the next key current now, whatever the schedule (the
// operator's command). The new ring is on disk before it is used: if saving
// fails, the old ring stays in service and the error is returned.
func (r *Rotator) Rotate() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rotateLocked()
}

func (r *Rotator) rotateLocked() error {
	cur := r.ring.Load()
	if cur == nil {
		return ErrNotLoaded
	}
	next, err := cur.Rotated(r.now(), r.rand(), r.Keep)
	if err != nil {
		return fmt.Errorf("keystore: rotate: %w", err)
	}
	if err := Save(r.Path(), next); err != nil {
		return err
	}
	r.ring.Store(next)
	if r.OnRotate != nil {
		r.OnRotate(cur, next)
	}
	r.log().Info("rotated NTS cookie key",
		zap.Uint32("current", next.CurrentID()), zap.Uint32("next", next.NextID()),
		zap.Int("keys", len(next.IDs())))
	return nil
}

// Prune drops all but keep sealing keys (current and older; the next key
// stays), saved before use like a rotation. Cookies sealed under the dropped
// keys stop opening.
func (r *Rotator) Prune(keep int) (dropped int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.ring.Load()
	if cur == nil {
		return 0, ErrNotLoaded
	}
	next, err := cur.Pruned(keep)
	if err != nil {
		return 0, fmt.Errorf("keystore: prune to %d keys: %w", keep, err)
	}
	dropped = len(cur.IDs()) - len(next.IDs())
	if dropped == 0 {
		return 0, nil
	}
	if err := Save(r.Path(), next); err != nil {
		return 0, err
	}
	r.ring.Store(next)
	r.log().Info("pruned NTS cookie keys", zap.Int("dropped", dropped), zap.Int("keys", len(next.IDs())))
	return dropped, nil
}

// NextRotation is when the schedule rotates next; zero with Manual.
func (r *Rotator) NextRotation() time.Time {
	ring := r.ring.Load()
	if ring == nil || r.Manual {
		return time.Time{}
	}
	return r.now().Add(r.untilDue())
}

// Run rotates on schedule until ctx is done. It returns ctx's error; a failed
// rotation is logged and retried, never fatal.
func (r *Rotator) Run(ctx context.Context) error {
	if r.Ring() == nil {
		return ErrNotLoaded
	}
	if r.Manual {
		<-ctx.Done()
		return ctx.Err()
	}
	var wait time.Duration
	for {
		if wait = r.untilDue(); wait == 0 {
			if err := r.rotateIfDue(); err != nil {
				r.log().Error("NTS key rotation failed; old keys stay in service", zap.Error(err))
				wait = retryDelay
			} else {
				wait = r.untilDue()
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// rotateIfDue rotates unless Rotate already did since the timer was set.
func (r *Rotator) rotateIfDue() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.untilDue() > 0 {
		return nil
	}
	return r.rotateLocked()
}

// untilDue is the time left before the current key has served Interval.
// It is capped at Interval so that a clock stepped backwards (a ring that
// seems to come from the future) delays rotation by one interval at most.
func (r *Rotator) untilDue() time.Duration {
	ring := r.ring.Load()
	if ring == nil {
		return 0
	}
	d := ring.RotatedAt().Add(r.interval()).Sub(r.now())
	return max(0, min(d, r.interval()))
}

func (r *Rotator) interval() time.Duration {
	if r.Interval > 0 {
		return r.Interval
	}
	return DefaultInterval
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Rotator) rand() io.Reader {
	if r.Rand != nil {
		return r.Rand
	}
	return rand.Reader
}

func (r *Rotator) log() *zap.Logger {
	if r.Log != nil {
		return r.Log
	}
	return zap.NewNop()
}
