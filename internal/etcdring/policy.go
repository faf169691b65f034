package etcdring

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"go.uber.org/zap"

	"timegate/fleet"
	"timegate/internal/secfile"
)

// loadPolicy applies the local copy of the fleet policy; the caller holds mu.
func (k *Keeper) loadPolicy() error {
	if k.cfg.LocalPolicy == "" || k.cfg.OnPolicy == nil {
		return nil
	}
	data, err := secfile.ReadPrivateOwned(k.cfg.LocalPolicy, k.cfg.Owners...)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("etcdring: %w", err)
	}
	k.putPolicy(data)
	return nil
}

// putPolicy applies a sealed policy from the store or the local copy; the
// caller holds mu. A policy older than the one in service is a replay.
func (k *Keeper) putPolicy(raw []byte) {
	if k.cfg.OnPolicy == nil {
		return
	}
	sealer := k.cfg.State.Config().Sealer
	text, at, err := sealer.OpenPolicy(raw)
	switch {
	case err != nil:
	case at.Before(k.policyHigh):
		err = fleet.ErrStale
	case at.Equal(k.policyAt) && string(raw) == string(k.policyRaw):
		return
	default:
		err = k.cfg.OnPolicy(text, at)
	}
	if err != nil {
		k.refuse(sealer.PolicyName(), err)
		return
	}
	k.policyAt, k.policyRaw, k.policyHigh = at, append([]byte(nil), raw...), at
	k.log().Info("fleet policy in service", zap.Time("published", at), zap.Int("bytes", len(text)))
	if k.cfg.LocalPolicy != "" {
		if err := secfile.WriteAtomic(k.cfg.LocalPolicy, k.policyRaw, fileMode); err != nil {
			k.log().Error("cannot save the local copy of the fleet policy", zap.Error(err))
		}
	}
}

// dropPolicy goes back to the local file's policy: the fleet has none (it
// was deleted). The caller holds mu.
func (k *Keeper) dropPolicy() {
	if k.cfg.OnPolicy == nil || k.policyRaw == nil {
		return
	}
	if err := k.cfg.OnPolicy(nil, time.Time{}); err != nil {
		k.log().Error("cannot return to the local policy", zap.Error(err))
		return
	}
	k.policyAt, k.policyRaw = time.Time{}, nil
	k.log().Warn("the fleet policy was deleted from the store: the local file's policy applies")
	if k.cfg.LocalPolicy != "" {
		if err := os.Remove(k.cfg.LocalPolicy); err != nil && !errors.Is(err, fs.ErrNotExist) {
			k.log().Error("cannot remove the local copy of the fleet policy", zap.Error(err))
		}
	}
}

// PublishPolicy seals text (already checked by the caller) and writes it as
// the fleet's policy: every gateway applies it as soon as its watch sees it.
func (k *Keeper) PublishPolicy(ctx context.Context, text []byte) (time.Time, error) {
	if !k.connected.Load() {
		return time.Time{}, ErrDisconnected
	}
	cli := k.store()
	if cli == nil {
		return time.Time{}, ErrDisconnected
	}
	sealer := k.cfg.State.Config().Sealer
	at := k.now().UTC()
	raw, err := sealer.SealPolicy(text, at, k.rand())
	if err != nil {
		return time.Time{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, k.heartbeat())
	defer cancel()
	if err := cli.Put(pctx, sealer.PolicyName(), raw); err != nil {
		return time.Time{}, fmt.Errorf("etcdring: publish policy: %w", err)
	}
	k.log().Info("published fleet policy", zap.Time("published", at), zap.Int("bytes", len(text)))
	return at, nil
}
