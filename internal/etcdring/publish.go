package etcdring

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"timegate/fleet"
)

// errLostRace: another gateway published first; its key arrives by watch.
var errLostRace = errors.New("etcdring: another gateway published a rotation first")

// Rotate publishes a new key now (`gatectl keys nts rotate --fleet`): every
// gateway loads it and it seals everywhere after the propagation delay. It
// returns the new key and when it starts sealing.
func (k *Keeper) Rotate(ctx context.Context) (fleet.Entry, error) {
	if !k.connected.Load() {
		return fleet.Entry{}, ErrDisconnected
	}
	if _, err := k.sync(ctx); err != nil {
		return fleet.Entry{}, err
	}
	k.mu.Lock()
	first := k.st.Empty() && k.latestRev == 0
	k.mu.Unlock()
	e, err := k.publishEntry(ctx, first)
	if err == nil {
		k.poke()
	}
	return e, err
}

func (k *Keeper) publish(ctx context.Context, first bool) error {
	_, err := k.publishEntry(ctx, first)
	return err
}

// publishEntry writes a fresh entry if PREFIX/latest has not moved since
// this gateway last saw it, and if no entry has the new id: an etcd
// transaction, so two gateways finding a rotation due publish one key, and
// key ids stay unique across the fleet.
func (k *Keeper) publishEntry(ctx context.Context, first bool) (fleet.Entry, error) {
	sealer := k.cfg.State.Config().Sealer
	k.mu.Lock()
	name, raw, e, err := k.st.NewEntry(k.now(), k.rand(), first)
	rev := k.latestRev
	k.mu.Unlock()
	if err != nil {
		return fleet.Entry{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, k.heartbeat())
	defer cancel()
	cli := k.store()
	if cli == nil {
		return fleet.Entry{}, ErrDisconnected
	}
	ok, err := cli.Publish(pctx, name, raw, sealer.LatestName(), fmt.Sprintf("%08x", e.ID), rev)
	if err != nil {
		return fleet.Entry{}, err
	}
	if !ok {
		return fleet.Entry{}, errLostRace
	}
	k.rotations.Add(1)
	k.log().Info("published fleet key", zap.String("key", name), zap.Time("seals_from", e.Activate), zap.Bool("first", first))
	return e, nil
}
