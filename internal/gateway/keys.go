package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
	"timegate/fleet"
	iaudit "timegate/internal/audit"
	"timegate/internal/config"
	"timegate/internal/etcdring"
	"timegate/internal/keystore"
	"timegate/nts"
)

// Local copies of what the fleet store holds, in ntsdumpdir: the sealed key
// entries and the sealed policy.
const (
	FleetCopyName   = "ntsfleet.bin"
	FleetPolicyName = "ntsfleet-policy.bin"
)

// keyService is where the NTS cookie keys come from, for the NTS-KE
// listener and the NTP path alike: the local ring file, rotated here (an
// NTS-KE host) or followed read-only (an NTP host of a split deployment,
// `ntsport 0`), or a fleet's etcd store (`ntskeystore`).
type keyService struct {
	log     *zap.Logger
	rec     iaudit.Recorder
	rotator *keystore.Rotator // nil with a fleet store
	fleet   *etcdring.Keeper  // nil without ntskeystore
	dir     string
	// changed is signalled (never blocking) whenever a ring is put in
	// service, for the NTS-KE helper processes' copies.
	changed chan struct{}
}

func (k *keyService) stored() {
	select {
	case k.changed <- struct{}{}:
	default: // one signal pending is enough: the reader loads the newest
	}
}

// Ring is the ring to serve now; nil while there is none (a follower
// waiting for the file, a fleet without its first key).
func (k *keyService) Ring() *nts.KeyRing {
	if k.fleet != nil {
		return k.fleet.Ring()
	}
	return k.rotator.Ring()
}

// follower reports whether this gateway only reads a ring another rotates.
func (k *keyService) follower() bool { return k.rotator != nil && k.rotator.Follow }

// openKeys loads the key ring this configuration names, or returns nil when
// the gateway serves neither NTS-KE nor NTP.
func (g *Gateway) openKeys(cfg *config.Config) (*keyService, error) {
	if cfg.NTSPort == 0 && cfg.Port == 0 {
		return nil, nil
	}
	dir := cfg.NTSDumpDir
	if dir == "" {
		dir = g.opts.StateDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway: ntsdumpdir: %w", err)
	}
	k := &keyService{log: g.log.Named("keys"), rec: g.rec, dir: dir, changed: make(chan struct{}, 1)}
	if cfg.NTSKeyStore != nil {
		if err := k.openFleet(g, cfg); err != nil {
			g.rec.Record(audit.Event{Type: audit.TypeKeyImport, Outcome: audit.OutcomeFailed, Details: map[string]string{"error": err.Error()}})
			return nil, err
		}
		return k, nil
	}
	// ntsrotate 0 is chrony's "never rotate by itself", not the default.
	k.rotator = &keystore.Rotator{Dir: dir, Interval: cfg.NTSRotate, Manual: cfg.NTSRotate == 0, Now: g.opts.Now, Log: k.log,
		OnRotate: k.rotated, Stored: k.stored, Owners: trustedOwners(cfg), Follow: cfg.NTSPort == 0}
	if err := k.rotator.Load(); err != nil {
		g.rec.Record(audit.Event{Type: audit.TypeKeyImport, Outcome: audit.OutcomeFailed, Details: map[string]string{"error": err.Error()}})
		return nil, fmt.Errorf("gateway: NTS key ring: %w", err)
	}
	if ring := k.rotator.Ring(); ring != nil {
		g.rec.Record(audit.Event{Type: audit.TypeKeyImport, Outcome: audit.OutcomeOK,
			Subject: audit.Subject{KeyID: keyID(ring.CurrentID())},
			Details: map[string]string{"file": k.rotator.Path(), "keys": strconv.Itoa(len(ring.IDs())), "follow": strconv.FormatBool(k.rotator.Follow)}})
	}
	return k, nil
}

func (k *keyService) openFleet(g *Gateway, cfg *config.Config) error {
	ks := cfg.NTSKeyStore
	where := cfg.Positions["ntskeystore"]
	wrap, err := etcdring.ReadWrapKey(ks.WrapKey, trustedOwners(cfg)...)
	if err != nil {
		return fmt.Errorf("%w: %s: ntskeystore: %v", config.ErrConfig, where, err)
	}
	sealer, err := fleet.NewSealer(wrap, ks.Prefix)
	clear(wrap)
	if err != nil {
		return fmt.Errorf("%w: %s: ntskeystore: %v", config.ErrConfig, where, err)
	}
	dial, err := etcdring.Dialer(ks, k.log.Named("etcd"), trustedOwners(cfg)...)
	if err != nil {
		return fmt.Errorf("%w: %s: ntskeystore: %v", config.ErrConfig, where, err)
	}
	interval := cfg.NTSRotate
	fc := fleet.Config{Sealer: sealer, Interval: interval, Delay: ks.Delay, Grace: ks.Grace}
	if fc.Delay == 0 {
		fc.Delay = config.DefaultKeyStoreDelay
	}
	if fc.Grace == 0 {
		every := interval
		if every == 0 {
			every = keystore.DefaultInterval
		}
		fc.Grace = time.Duration(nts.DefaultKeep) * every
	}
	k.fleet, err = etcdring.New(etcdring.Config{
		Dial: dial, Endpoints: ks.Endpoints, State: fleet.New(fc),
		LocalCopy: filepath.Join(k.dir, FleetCopyName), Owners: trustedOwners(cfg),
		Scheduled: interval > 0, Now: g.opts.Now, Log: k.log.Named("fleet"),
		OnRefused: k.refused, OnChange: k.rotated, Stored: k.stored,
		OnPolicy: g.applyFleetPolicy, LocalPolicy: filepath.Join(k.dir, FleetPolicyName),
	})
	if err != nil {
		return err
	}
	if err := k.fleet.Load(); err != nil {
		return fmt.Errorf("gateway: fleet key ring: %w", err)
	}
	k.log.Info("NTS cookie keys come from the fleet's etcd store", zap.Strings("endpoints", ks.Endpoints),
		zap.String("prefix", ks.Prefix), zap.Duration("delay", fc.Delay), zap.Duration("grace", fc.Grace),
		zap.Bool("local_copy_loaded", k.fleet.Ring() != nil))
	return nil
}

func (k *keyService) run(ctx context.Context, spawn func(func() error)) {
	if k.fleet != nil {
		spawn(func() error {
			if err := k.fleet.Run(ctx); err != context.Canceled {
				return err
			}
			return nil
		})
		return
	}
	spawn(func() error { return k.rotator.Run(ctx) })
}

// reload re-reads the ring file (SIGHUP); a fleet ring follows etcd alone.
func (k *keyService) reload() error {
	if k.rotator == nil {
		return nil
	}
	_, err := k.rotator.Reload()
	return err
}

// path is where the ring, or the fleet's local copy, is kept.
func (k *keyService) path() string {
	if k.rotator != nil {
		return k.rotator.Path()
	}
	return filepath.Join(k.dir, FleetCopyName)
}

// refused records a fleet entry that did not authenticate, was replayed or
// was deleted early: someone with write access to etcd, or a broken writer.
func (k *keyService) refused(name string, err error) {
	k.recorder().Record(audit.Event{Type: audit.TypeKeyRefused, Outcome: audit.OutcomeRejected,
		Subject: audit.Subject{KeyID: name}, Details: map[string]string{"error": err.Error()}})
}

// rotated records a key rotation and the keys it pruned.
func (k *keyService) rotated(prev, next *nts.KeyRing) {
	if prev.CurrentID() != next.CurrentID() {
		k.recorder().Record(audit.Event{Type: audit.TypeKeyRotate, Outcome: audit.OutcomeOK, Subject: audit.Subject{KeyID: keyID(next.CurrentID())},
			Details: map[string]string{"previous": keyID(prev.CurrentID()), "next": keyID(next.NextID()), "keys": strconv.Itoa(len(next.IDs()))}})
	}
	kept := map[uint32]bool{}
	for _, id := range next.IDs() {
		kept[id] = true
	}
	for _, id := range prev.IDs() {
		if !kept[id] {
			k.recorder().Record(audit.Event{Type: audit.TypeKeyPrune, Outcome: audit.OutcomeOK, Subject: audit.Subject{KeyID: keyID(id)}})
		}
	}
}

func keyID(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func (k *keyService) recorder() iaudit.Recorder {
	if k.rec == nil {
		return iaudit.Nop{}
	}
	return k.rec
}

// fleetRotateTimeout bounds `gatectl keys nts rotate --fleet`.
const fleetRotateTimeout = 10 * time.Second

// RotateNTSKeys rotates the NTS key ring now. On a gateway with its own
// ring file the pre-generated next key starts sealing (saved before use);
// with a fleet store (fleet set) a new key is published to every gateway
// and seals after the propagation delay. Cookies sealed under kept keys
// still open either way.
func (g *Gateway) RotateNTSKeys(fleetWide bool) error {
	k := g.keys
	switch {
	case k == nil:
		return fmt.Errorf("gateway: NTS is off (port 0 and ntsport 0)")
	case k.fleet != nil && !fleetWide:
		return fmt.Errorf("gateway: this gateway's keys come from the fleet store (ntskeystore): rotate with --fleet, which publishes to every gateway")
	case k.fleet == nil && fleetWide:
		return fmt.Errorf("gateway: no ntskeystore: --fleet needs a fleet store")
	case k.fleet != nil:
		ctx, cancel := context.WithTimeout(context.Background(), fleetRotateTimeout)
		defer cancel()
		e, err := k.fleet.Rotate(ctx)
		if err != nil {
			return err
		}
		g.log.Info("fleet rotation published", zap.Uint32("key", e.ID), zap.Time("seals_from", e.Activate))
		return nil
	}
	if err := k.rotator.Rotate(); err != nil {
		return err
	}
	if g.nts != nil {
		g.nts.ringChanged() // the next NTS-KE seals with the new key, before we return
	}
	g.log.Info("NTS key ring rotated", zap.Uint32("sealing_key", k.rotator.Ring().CurrentID()))
	return nil
}

// FleetKeys reports whether the cookie keys come from a fleet store.
func (g *Gateway) FleetKeys() bool { return g.keys != nil && g.keys.fleet != nil }

// applyFleetPolicy serves the fleet's policy (text nil: the local file's
// again). A policy that does not parse, or does not build, is refused and
// the one in service stays.
func (g *Gateway) applyFleetPolicy(text []byte, _ time.Time) error {
	var p *config.Policy
	if text != nil {
		var err error
		if p, err = config.ParsePolicy("fleet policy", text); err != nil {
			return err
		}
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	prev := g.fleetPolicy.Swap(p)
	cfg := g.cfg.Load()
	if g.responder.Load() == nil || cfg == nil {
		return nil // at start: open builds the first responder with it
	}
	resp, err := g.buildResponder(cfg, g.keySet.Load())
	if err != nil {
		g.fleetPolicy.Store(prev)
		return err
	}
	g.responder.Store(resp)
	g.log.Info("access policy and rate limit now from the fleet store", zap.Bool("fleet", p != nil))
	return nil
}

// fleetPolicyTimeout bounds `gatectl policy publish`.
const fleetPolicyTimeout = 10 * time.Second

// PublishFleetPolicy checks the policy file at path (restrict, allow, deny
// and ratelimit lines only) and publishes it to every gateway of the fleet.
func (g *Gateway) PublishFleetPolicy(path string) (time.Time, error) {
	if !g.FleetKeys() {
		return time.Time{}, fmt.Errorf("gateway: no ntskeystore: there is no fleet to publish a policy to")
	}
	text, err := config.ReadPolicyFile(path)
	if err != nil {
		return time.Time{}, err
	}
	p, err := config.ParsePolicy(path, text)
	if err != nil {
		return time.Time{}, err
	}
	if _, err := buildGate(p.Overlay(g.cfg.Load())); err != nil {
		return time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), fleetPolicyTimeout)
	defer cancel()
	return g.keys.fleet.PublishPolicy(ctx, text)
}
