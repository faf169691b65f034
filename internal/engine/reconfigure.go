package engine

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/symkey"
)

// reconfigureEvent carries a reload's server lines and keys to the loop.
type reconfigureEvent struct {
	sources []config.Source
	keys    *symkey.Set
	reply   chan<- []string
}

// Reconfigure applies reloaded `server`/`pool` lines and keys without a restart (chrony's
// `reload sources`): associations whose line and key are unchanged keep running with
// their state, removed ones stop, new ones start. It returns the warnings New would give
// for the new lines.
func (e *Engine) Reconfigure(ctx context.Context, sources []config.Source, keys *symkey.Set) ([]string, error) {
	r := e.loop.Load()
	if r == nil {
		return nil, ErrNotRunning
	}
	reply := make(chan []string, 1)
	select {
	case r.events <- reconfigureEvent{sources: sources, keys: keys, reply: reply}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.ctx.Done():
		return nil, ErrNotRunning
	}
	select {
	case w := <-reply:
		return w, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// reconfigure runs on the loop goroutine.
func (r *runner) reconfigure(ev reconfigureEvent) []string {
	oldKeys := r.opts.Keys
	r.opts.Keys = ev.keys
	r.opts.Sources = ev.sources
	var warnings []string
	kept := make(map[*assoc]bool)
	var started []*assoc
	for _, spec := range ev.sources {
		if olds := r.matching(spec, oldKeys, kept); len(olds) > 0 {
			for _, a := range olds {
				a.spec.Pos = spec.Pos
				kept[a] = true
			}
			continue
		}
		a, warn := r.newAssoc(spec)
		warnings = append(warnings, warn...)
		if a != nil {
			started = append(started, a)
		}
	}
	var keep []*assoc
	for _, a := range r.assocs {
		if kept[a] {
			keep = append(keep, a)
			continue
		}
		a.stopTimer()
		a.removed = true
		r.log.Info("source removed by reload", zap.String("source", a.String()))
	}
	r.assocs = append(keep, started...)
	for _, a := range started {
		r.log.Info("source added by reload", zap.String("source", a.spec.Host))
		r.start(a)
	}
	if len(r.assocs) > 0 && !r.anySelectable() {
		warnings = append(warnings, fmt.Sprintf("no configured source can be selected under authselectmode %s: the gateway will not synchronise", r.mode))
	}
	return warnings
}

// matching returns the running associations of an unchanged line: same options, and for
// `key ID` the same key material in the new keys file as in the old.
func (r *runner) matching(spec config.Source, oldKeys *symkey.Set, taken map[*assoc]bool) []*assoc {
	var out []*assoc
	for _, a := range r.assocs {
		if taken[a] || !sameLine(a.spec, spec) {
			continue
		}
		if spec.KeyID != 0 && !sameKey(oldKeys, r.opts.Keys, spec.KeyID) {
			continue
		}
		out = append(out, a)
	}
	return out
}

func sameLine(a, b config.Source) bool {
	a.Pos, b.Pos = config.Position{}, config.Position{}
	return a == b
}

func sameKey(old, cur *symkey.Set, id uint32) bool {
	if old == nil || cur == nil {
		return false
	}
	a, ok1 := old.Lookup(id)
	b, ok2 := cur.Lookup(id)
	return ok1 && ok2 && a.Equal(b)
}

// newID numbers associations uniquely for the life of the engine, across reloads.
func (e *Engine) newID() uint64 {
	e.lastID++
	return e.lastID
}
