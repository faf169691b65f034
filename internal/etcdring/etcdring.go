// Package etcdring is the edge between a fleet's etcd key store and one
// gateway: it reads and watches the fleet's prefix, feeds what it sees to a
// fleet.State (which decides everything), publishes rotations and prunes
// expired keys, keeps the last good set of entries in a local file, and
// serves the resulting nts.KeyRing through an atomic pointer.
//
// While etcd cannot be reached the gateway keeps serving the ring it has
// (from memory, or from the local copy at start), reports the outage (log,
// Status, metrics) and publishes nothing; it catches up when etcd answers.
package etcdring

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"timegate/fleet"
	"timegate/internal/secfile"
	"timegate/nts"
)

// Timing of the store connection.
const (
	// DefaultHeartbeat is how often a quorum read checks that etcd still
	// answers: a watch on a cluster that lost quorum, or on members that all
	// went away, stays silent instead of failing.
	DefaultHeartbeat = 5 * time.Second
	// maxBackoff caps the wait between reconnection attempts, so a gateway
	// catches up within seconds of etcd's return.
	maxBackoff = 5 * time.Second
	// fileMode: the local copy holds sealed keys only, but is kept as
	// private as the ring file it replaces.
	fileMode = 0o600
	// maxRead bounds the keys one read of the prefix may return: a fleet
	// holds at most fleet.MaxEntries entries plus two other keys, so
	// anything near this many is a flood, not a fleet.
	maxRead = 4 * fleet.MaxEntries
)

// ErrDisconnected: a rotation was asked while etcd cannot be reached; it is
// refused rather than sealed with a key the other gateways may never see.
var ErrDisconnected = errors.New("etcdring: etcd is unreachable: no rotation is published until it answers")

// Config sets a Keeper up. Nil fields take defaults as in crypto/tls.Config.
type Config struct {
	// Dial connects to etcd; Run calls it until it succeeds (with etcd
	// authentication the client's constructor needs etcd to answer).
	Dial      func() (Store, error)
	Endpoints []string     // for Status
	State     *fleet.State // required; the Keeper owns it from now on
	// LocalCopy is the file holding the last good entries; "" keeps none.
	LocalCopy string
	Owners    []int // users besides root and the effective user who may own LocalCopy
	// Heartbeat is how often etcd's quorum is checked; 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// Scheduled lets this gateway publish the rotations its schedule makes
	// due (any gateway may: publications are serialised in etcd).
	Scheduled bool
	Now       func() time.Time
	Rand      io.Reader
	Log       *zap.Logger
	// OnRefused is told of every entry refused (tampered, unsealed,
	// replayed, deleted early); it must not block.
	OnRefused func(name string, err error)
	// OnChange is told when the ring in service changes (a new sealing key,
	// a key added or pruned); it must not block.
	OnChange func(prev, next *nts.KeyRing)
	// Stored, when set, is told whenever a ring is put in service, the
	// first one too, so that copies elsewhere (NTS-KE helper processes)
	// follow at once; it must not block.
	Stored func()
	// OnPolicy, when set, is handed the fleet's policy text each time a new
	// one authenticates, and nil when the fleet has none (the local file
	// applies); an error refuses the policy (it is reported like a refused
	// entry and the previous one stays). LocalPolicy keeps the last good one.
	OnPolicy    func(text []byte, published time.Time) error
	LocalPolicy string
}

// Keeper serves one gateway's fleet ring.
type Keeper struct {
	cfg Config

	mu        sync.Mutex // guards st, latestRev
	st        *fleet.State
	latestRev int64 // mod revision of PREFIX/latest, 0 before the first publication

	ring      atomic.Pointer[nts.KeyRing]
	connected atomic.Bool
	changedAt atomic.Int64 // UnixNano of the last connect or disconnect
	syncedAt  atomic.Int64 // UnixNano of the last good read of etcd
	refused   atomic.Uint64
	rotations atomic.Uint64
	lastErr   atomic.Pointer[string]
	kick      chan struct{}
	client    atomic.Pointer[storeBox]

	// The fleet policy in service (guarded by mu): when it was published,
	// and its sealed form for the local copy; zero and nil for none.
	policyAt  time.Time
	policyRaw []byte
	// policyHigh is the newest publication time ever in service: a deleted
	// policy followed by a replay of an older one does not come back.
	policyHigh time.Time

	repMu                sync.Mutex // refusal reports in the current window
	repStart             time.Time
	repCount, repDropped int
}

// New checks cfg and returns a Keeper; call Load, then Run.
func New(cfg Config) (*Keeper, error) {
	if cfg.Dial == nil || cfg.State == nil || cfg.State.Config().Sealer == nil {
		return nil, errors.New("etcdring: Dial and State with a Sealer are required")
	}
	return &Keeper{cfg: cfg, st: cfg.State, kick: make(chan struct{}, 1)}, nil
}

// Ring is the ring to serve now; nil until the fleet has a sealing key.
func (k *Keeper) Ring() *nts.KeyRing { return k.ring.Load() }

// Load serves the local copy, if there is one, so that a gateway restarted
// while etcd is unreachable opens the cookies the fleet issued.
func (k *Keeper) Load() error {
	if k.cfg.LocalCopy == "" {
		return nil
	}
	data, err := secfile.ReadPrivateOwned(k.cfg.LocalCopy, k.cfg.Owners...)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("etcdring: %w", err)
	}
	kvs, err := k.cfg.State.Config().Sealer.UnmarshalSnapshot(data)
	if err != nil {
		return fmt.Errorf("etcdring: %s: %w", k.cfg.LocalCopy, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range k.st.Reset(kvs, k.now()) {
		k.refuse(r.Name, r.Err)
	}
	k.update()
	return k.loadPolicy()
}

// Status is what operators and metrics are shown.
type Status struct {
	Prefix    string
	Endpoints []string
	Connected bool
	Since     time.Time // of the last connect or disconnect
	LastSync  time.Time // zero before the first good read
	LastError string
	Refused   uint64 // entries refused since start
	Published uint64 // rotations this gateway published
	Delay     time.Duration
	Grace     time.Duration
	Keys      []fleet.KeyInfo
	NextEvent time.Time
	// Policy is when the fleet policy in service was published; zero when
	// the local file's policy applies.
	Policy time.Time
	// Cutoff is the revocation cutoff in force (keys activated before it,
	// but the sealing one, are revoked); zero when none was published.
	Cutoff time.Time
}

// Status reports the connection and the keys.
func (k *Keeper) Status() Status {
	now := k.now()
	k.mu.Lock()
	info, next, pol, cut := k.st.Info(now), k.st.NextEvent(now), k.policyAt, k.st.Cutoff()
	k.mu.Unlock()
	s := Status{
		Prefix: k.cfg.State.Config().Sealer.Prefix(), Endpoints: k.cfg.Endpoints,
		Connected: k.connected.Load(), Refused: k.refused.Load(), Published: k.rotations.Load(),
		Delay: k.cfg.State.Config().Delay, Grace: k.cfg.State.Config().Grace, Keys: info, NextEvent: next, Policy: pol, Cutoff: cut,
	}
	if t := k.changedAt.Load(); t != 0 {
		s.Since = time.Unix(0, t)
	}
	if t := k.syncedAt.Load(); t != 0 {
		s.LastSync = time.Unix(0, t)
	}
	if e := k.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// Run keeps the ring in step with etcd until ctx is done; it returns ctx's
// error. An unreachable etcd is reported and retried, never fatal.
func (k *Keeper) Run(ctx context.Context) error {
	defer func() {
		if c := k.client.Swap(nil); c != nil {
			c.s.Close()
		}
	}()
	backoff := time.Second
	for {
		err := k.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		k.disconnected(err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
		if k.connected.Load() {
			backoff = time.Second
		}
	}
}

// session reads the prefix, then follows it until etcd fails to answer.
func (k *Keeper) session(ctx context.Context) error {
	cli := k.store()
	if cli == nil {
		c, err := k.cfg.Dial()
		if err != nil {
			return fmt.Errorf("etcdring: connect: %w", err)
		}
		k.client.Store(&storeBox{c})
		cli = c
	}
	rev, err := k.sync(ctx)
	if err != nil {
		return err
	}
	k.reconnected()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sealer := k.cfg.State.Config().Sealer
	wch := cli.Watch(wctx, sealer.Prefix()+"/", rev+1)
	hb := time.NewTicker(k.heartbeat())
	defer hb.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		k.step(ctx)
		timer.Reset(k.untilNextEvent())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-wch:
			if !ok {
				return errors.New("etcdring: watch closed")
			}
			if err := resp.Err; err != nil {
				return fmt.Errorf("etcdring: watch: %w", err)
			}
			k.apply(resp.Events)
		case <-hb.C:
			if err := k.ping(ctx); err != nil {
				return err
			}
		case <-timer.C:
		case <-k.kick:
		}
	}
}

// sync reads the whole prefix and resets the state to it.
func (k *Keeper) sync(ctx context.Context) (int64, error) {
	sealer := k.cfg.State.Config().Sealer
	cli := k.store()
	if cli == nil {
		return 0, ErrDisconnected
	}
	rctx, cancel := context.WithTimeout(ctx, k.heartbeat())
	defer cancel()
	all, rev, more, err := cli.ReadAll(rctx, sealer.Prefix()+"/", maxRead)
	if err != nil {
		return 0, fmt.Errorf("etcdring: read %s: %w", sealer.Prefix(), err)
	}
	if more {
		// Reading on would cost memory a store writer chooses; the ring in
		// service stays, and the outage alarm tells the operator.
		return 0, fmt.Errorf("etcdring: %s holds more than %d keys: not read (flooded by a store writer?)", sealer.Prefix(), maxRead)
	}
	kvs := make([]fleet.KV, 0, len(all))
	var latestRev int64
	var policy, cutoff []byte
	for _, kv := range all {
		switch name := kv.Name; {
		case name == sealer.LatestName():
			latestRev = kv.ModRev
		case name == sealer.PolicyName():
			policy = kv.Value
		case name == sealer.CutoffName():
			cutoff = kv.Value
		default:
			if _, ok := sealer.IDOf(name); ok {
				kvs = append(kvs, fleet.KV{Name: name, Value: kv.Value})
			} else {
				k.refuse(name, fleet.ErrMalformed)
			}
		}
	}
	k.mu.Lock()
	k.latestRev = latestRev
	if cutoff != nil {
		k.putCutoff(cutoff)
	}
	for _, r := range k.st.Reset(kvs, k.now()) {
		k.refuse(r.Name, r.Err)
	}
	k.update()
	if policy != nil {
		k.putPolicy(policy)
	} else {
		k.dropPolicy()
	}
	k.mu.Unlock()
	k.syncedAt.Store(k.now().UnixNano())
	return rev, nil
}

// apply feeds watch events to the state.
func (k *Keeper) apply(events []StoreEvent) {
	sealer := k.cfg.State.Config().Sealer
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	// A cutoff first: a prune writes it before deleting the keys it
	// revokes, and those deletions are early drops without it.
	for _, ev := range events {
		if ev.Name == sealer.CutoffName() && !ev.Deleted {
			k.putCutoff(ev.Value)
		}
	}
	for _, ev := range events {
		name := ev.Name
		if name == sealer.CutoffName() {
			continue // deleting it revokes nothing back: cutoffs only move forward
		}
		if name == sealer.LatestName() {
			if !ev.Deleted {
				k.latestRev = ev.ModRev
			}
			continue
		}
		if name == sealer.PolicyName() {
			if !ev.Deleted {
				k.putPolicy(ev.Value)
			} else {
				k.dropPolicy()
			}
			continue
		}
		var err error
		if ev.Deleted {
			err = k.st.Delete(name, now)
		} else if _, ok := sealer.IDOf(name); !ok {
			err = fleet.ErrMalformed
		} else {
			err = k.st.Put(name, ev.Value, now)
		}
		if err != nil {
			k.refuse(name, err)
		}
	}
	k.update()
	k.syncedAt.Store(now.UnixNano())
}

// step does what the clock makes due: a new ring as a pending key
// activates, a scheduled rotation (or the fleet's first key), pruning.
func (k *Keeper) step(ctx context.Context) {
	now := k.now()
	k.mu.Lock()
	// The fleet's first key is published whatever the schedule: without
	// it no gateway can issue a cookie.
	first := k.st.Empty() && k.latestRev == 0
	due := first || (k.cfg.Scheduled && k.st.Due(now))
	expired := k.st.Prune(now)
	k.update()
	k.mu.Unlock()
	if due {
		if err := k.publish(ctx, first); err != nil && !errors.Is(err, errLostRace) {
			k.log().Warn("scheduled fleet rotation not published", zap.Error(err))
		}
	}
	for _, name := range expired {
		dctx, cancel := context.WithTimeout(ctx, k.heartbeat())
		err := k.store().Delete(dctx, name)
		cancel()
		if err != nil {
			k.log().Warn("cannot prune an expired fleet key; another gateway will", zap.String("key", name), zap.Error(err))
		} else {
			k.log().Info("pruned expired fleet key", zap.String("key", name))
		}
	}
}

// ping is a quorum read: it fails when etcd cannot serve a consistent view.
func (k *Keeper) ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, k.heartbeat())
	defer cancel()
	if err := k.store().Get(pctx, k.cfg.State.Config().Sealer.LatestName()); err != nil {
		return fmt.Errorf("etcdring: heartbeat: %w", err)
	}
	k.syncedAt.Store(k.now().UnixNano())
	return nil
}

// update recomputes the ring from the state and saves the local copy; the
// caller holds k.mu.
func (k *Keeper) update() {
	now := k.now()
	next, err := k.st.Ring(now)
	prev := k.ring.Load()
	if err != nil {
		// No sealing key (an empty fleet): keep what serves, if anything.
		return
	}
	if prev != nil && sameKeys(prev, next) {
		return
	}
	k.saveCopy()
	k.ring.Store(next)
	if k.cfg.Stored != nil {
		k.cfg.Stored()
	}
	if prev != nil && k.cfg.OnChange != nil {
		k.cfg.OnChange(prev, next)
	}
	k.log().Info("fleet key ring in service", zap.Uint32("sealing", next.CurrentID()),
		zap.Int("pending", next.Pending()), zap.Int("keys", len(next.IDs())))
}

func (k *Keeper) saveCopy() {
	if k.cfg.LocalCopy == "" {
		return
	}
	data := k.cfg.State.Config().Sealer.MarshalSnapshot(k.st.Entries())
	if err := secfile.WriteAtomic(k.cfg.LocalCopy, data, fileMode); err != nil {
		k.log().Error("cannot save the local copy of the fleet key ring", zap.Error(err))
	}
}

func sameKeys(a, b *nts.KeyRing) bool {
	if a.CurrentID() != b.CurrentID() || a.Pending() != b.Pending() {
		return false
	}
	x, y := a.IDs(), b.IDs()
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

func (k *Keeper) reconnected() {
	if !k.connected.Swap(true) {
		k.changedAt.Store(k.now().UnixNano())
		k.log().Info("fleet key store reachable", zap.Strings("endpoints", k.cfg.Endpoints))
	}
}

func (k *Keeper) disconnected(err error) {
	msg := err.Error()
	k.lastErr.Store(&msg)
	if k.connected.Swap(false) || k.changedAt.Load() == 0 {
		k.changedAt.Store(k.now().UnixNano())
		k.log().Error("FLEET KEY STORE UNREACHABLE: serving the last good key ring; no rotation until etcd answers",
			zap.Error(err))
	}
}

func (k *Keeper) untilNextEvent() time.Duration {
	now := k.now()
	k.mu.Lock()
	next := k.st.NextEvent(now)
	k.mu.Unlock()
	if next.IsZero() {
		return time.Hour
	}
	// +1 s: entries carry whole seconds, and a timer firing a hair early
	// would find nothing due and sleep until the next heartbeat.
	return min(max(next.Sub(now), 0)+time.Second, time.Hour)
}

func (k *Keeper) poke() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

func (k *Keeper) heartbeat() time.Duration {
	if k.cfg.Heartbeat > 0 {
		return k.cfg.Heartbeat
	}
	return DefaultHeartbeat
}

func (k *Keeper) now() time.Time {
	if k.cfg.Now != nil {
		return k.cfg.Now()
	}
	return time.Now()
}

func (k *Keeper) rand() io.Reader {
	if k.cfg.Rand != nil {
		return k.cfg.Rand
	}
	return rand.Reader
}

func (k *Keeper) log() *zap.Logger {
	if k.cfg.Log != nil {
		return k.cfg.Log
	}
	return zap.NewNop()
}

// KeyIDString formats a key id as the store names it.
func KeyIDString(id uint32) string { return strconv.FormatUint(uint64(id), 16) }

// storeBox lets an interface value sit in an atomic.Pointer.
type storeBox struct{ s Store }

// store is the connected Store; nil before the first successful Dial.
func (k *Keeper) store() Store {
	if b := k.client.Load(); b != nil {
		return b.s
	}
	return nil
}
