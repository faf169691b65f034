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
	// DefaultPoll is how often a follower re-reads the ring file. The KE
	// host saves each key one rotation before it seals, so a follower that
	// polls far more often than ntsrotate always opens the new cookies.
	DefaultPoll = 10 * time.Second
)

// ErrNotLoaded is returned by Rotate before Load.
var ErrNotLoaded = errors.New("keystore: no key ring loaded")

// ErrFollower: a follower never rotates or prunes; the NTS-KE host does.
var ErrFollower = errors.New("keystore: this gateway follows a ring another gateway rotates (ntsport 0): rotate on the NTS-KE host")

// Reload re-reads the ring file (SIGHUP, `gatectl reload`, and a follower's
// poll) and serves it when it differs from the ring in service: an operator
// who copied a ring in, or the NTS-KE host that rotated a shared file. A
// file that is missing (the owner writes it back), unreadable or corrupt
// leaves the ring in service as it is.
func (r *Rotator) Reload() (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.ring.Load()
	ring, err := Load(r.Path(), r.Owners...)
	if errors.Is(err, fs.ErrNotExist) {
		if r.Follow || cur == nil {
			return false, nil // nothing shared yet, or the file was moved away: keep serving
		}
		return false, Save(r.Path(), cur)
	}
	if err != nil {
		return false, err
	}
	if cur != nil && sameRing(cur, ring) {
		return false, nil
	}
	r.store(ring)
	if cur != nil && r.OnRotate != nil && cur.CurrentID() != ring.CurrentID() {
		r.OnRotate(cur, ring)
	}
	r.log().Info("NTS key ring reloaded from its file", zap.String("path", r.Path()),
		zap.Uint32("current", ring.CurrentID()), zap.Uint32("next", ring.NextID()), zap.Int("keys", len(ring.IDs())))
	return true, nil
}

func sameRing(a, b *nts.KeyRing) bool {
	x, err1 := a.MarshalBinary()
	y, err2 := b.MarshalBinary()
	return err1 == nil && err2 == nil && string(x) == string(y)
}

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
	// Stored, when set, is told whenever a ring is put in service (load,
	// reload, rotation, prune), so that copies elsewhere (NTS-KE helper
	// processes) follow at once; it must not block.
	Stored func()
	// Owners are the users besides root and the effective user who may own
	// the ring file: the user a root start drops to, which writes it.
	Owners []int
	// Follow makes the ring read-only here: another gateway (an NTS-KE
	// host) rotates the file and this one, an NTP host of a split
	// deployment, re-reads it when it changes and never writes it. A file
	// not there yet is waited for.
	Follow bool
	// Poll is how often a follower checks the file; 0 means DefaultPoll.
	Poll time.Duration

	mu   sync.Mutex // serialises Load and Rotate: one writer of the file
	ring atomic.Pointer[nts.KeyRing]
}

// store puts ring in service.
func (r *Rotator) store(ring *nts.KeyRing) {
	r.ring.Store(ring)
	if r.Stored != nil {
		r.Stored()
	}
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
	if errors.Is(err, fs.ErrNotExist) && r.Follow {
		r.log().Info("no NTS key ring file: NTS requests are not answered until an NTS-KE host's ring is shared here",
			zap.String("path", r.Path()))
		return nil
	}
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
	r.store(ring)
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
	if r.Follow {
		return ErrFollower
	}
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
	r.store(next)
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
	if r.Follow {
		return 0, ErrFollower
	}
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
	r.store(next)
	r.log().Info("pruned NTS cookie keys", zap.Int("dropped", dropped), zap.Int("keys", len(next.IDs())))
	return dropped, nil
}

// NextRotation is when the schedule rotates next; zero with Manual.
func (r *Rotator) NextRotation() time.Time {
	ring := r.ring.Load()
	if ring == nil || r.Manual || r.Follow {
		return time.Time{}
	}
	return r.now().Add(r.untilDue())
}

// Run rotates on schedule until ctx is done. It returns ctx's error; a failed
// rotation is logged and retried, never fatal.
func (r *Rotator) Run(ctx context.Context) error {
	if r.Follow {
		return r.follow(ctx)
	}
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

// follow re-reads the file every Poll until ctx is done. A bad read is
// logged and the ring in service kept: the cookies it opens stay valid.
func (r *Rotator) follow(ctx context.Context) error {
	poll := r.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var failing bool
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		_, err := r.Reload()
		switch {
		case err != nil && !failing:
			r.log().Error("cannot re-read the shared NTS key ring; serving the keys loaded before", zap.Error(err))
		case err == nil && failing:
			r.log().Info("shared NTS key ring readable again")
		}
		failing = err != nil
	}
}
