package etcdring

import (
	"time"

	"go.uber.org/zap"
)

// Refusals reported (logged and audited) per window: a store writer can
// write junk entries as fast as etcd takes them, and each must not become a
// log line and an audit record; all are counted.
const (
	refusalReports = 20
	refusalWindow  = time.Minute
)

func (k *Keeper) refuse(name string, err error) {
	k.refused.Add(1)
	now := k.now()
	k.repMu.Lock()
	if now.Sub(k.repStart) >= refusalWindow || now.Before(k.repStart) {
		if k.repDropped > 0 {
			k.log().Error("fleet entries refused without a report in the last window", zap.Int("count", k.repDropped))
		}
		k.repStart, k.repCount, k.repDropped = now, 0, 0
	}
	report := k.repCount < refusalReports
	if report {
		k.repCount++
	} else {
		k.repDropped++
	}
	k.repMu.Unlock()
	if !report {
		return
	}
	k.log().Error("fleet key entry refused", zap.String("key", name), zap.Error(err))
	if k.cfg.OnRefused != nil {
		k.cfg.OnRefused(name, err)
	}
}
