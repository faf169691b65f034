package etcdring

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// ErrNothingToRevoke: a fleet prune found no more active keys than it
// keeps.
var ErrNothingToRevoke = errors.New("etcdring: no superseded key to revoke")

// putCutoff applies a sealed cutoff from the store; the caller holds mu.
func (k *Keeper) putCutoff(raw []byte) {
	sealer := k.cfg.State.Config().Sealer
	before, at, err := sealer.OpenCutoff(raw)
	if err != nil {
		k.refuse(sealer.CutoffName(), err)
		return
	}
	if k.st.Cut(before) {
		k.log().Warn("fleet keys revoked: superseded keys that began sealing before the cutoff no longer open cookies",
			zap.Time("cutoff", before), zap.Time("published", at))
	}
}

// Prune revokes every active key but the keep newest (`gatectl keys nts
// prune --fleet`): it publishes the cutoff, applies it here at once and
// deletes the revoked keys' entries (any gateway would, as expired). The
// cutoff stays in the store (one small value), so that a gateway away
// during the prune revokes the same keys when it reads the prefix again.
// It returns the revoked key ids.
func (k *Keeper) Prune(ctx context.Context, keep int) ([]uint32, error) {
	if !k.connected.Load() {
		return nil, ErrDisconnected
	}
	if _, err := k.sync(ctx); err != nil {
		return nil, err
	}
	sealer := k.cfg.State.Config().Sealer
	now := k.now()
	k.mu.Lock()
	before, revoked, ok := k.st.PlanCutoff(now, keep)
	k.mu.Unlock()
	if !ok {
		return nil, ErrNothingToRevoke
	}
	raw, err := sealer.SealCutoff(before, now, k.rand())
	if err != nil {
		return nil, err
	}
	cli := k.store()
	if cli == nil {
		return nil, ErrDisconnected
	}
	pctx, cancel := context.WithTimeout(ctx, k.heartbeat())
	defer cancel()
	if err := cli.Put(pctx, sealer.CutoffName(), raw); err != nil {
		return nil, fmt.Errorf("etcdring: publish the cutoff: %w", err)
	}
	k.mu.Lock()
	k.putCutoff(raw)
	expired := k.st.Prune(now)
	k.update()
	k.mu.Unlock()
	for _, name := range expired {
		if err := cli.Delete(pctx, name); err != nil {
			k.log().Warn("cannot delete a revoked fleet key; the others will, as expired", zap.String("key", name), zap.Error(err))
		}
	}
	k.log().Warn("published a fleet key revocation", zap.Time("cutoff", before), zap.Int("revoked", len(revoked)))
	return revoked, nil
}
