package engine

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/symkey"
	"timegate/upstream"
)

// reconfigureEvent carries a reload's settings to the loop.
type reconfigureEvent struct {
	opts  Reload
	mode  upstream.AuthSelectMode
	reply chan<- []string
}

// Reload is what a configuration reload changes in a running engine.
type Reload struct {
	Sources        []config.Source
	Keys           *symkey.Set
	MinSources     int
	MaxDistance    time.Duration
	AuthSelectMode string
}

// Reconfigure applies reloaded `server`/`pool` lines, keys and selection settings
// without a restart (chrony's `reload sources`): associations whose line and key are
// unchanged keep running with their state, removed ones stop, new ones start; the next
// selection round uses the new minsources, maxdistance and authselectmode. It returns
// the warnings New would give for the new configuration.
func (e *Engine) Reconfigure(ctx context.Context, o Reload) ([]string, error) {
	mode, err := upstream.ParseAuthSelectMode(o.AuthSelectMode)
	if err != nil {
		return nil, err
	}
	r := e.loop.Load()
	if r == nil {
		return nil, ErrNotRunning
	}
	reply := make(chan []string, 1)
	select {
	case r.events <- reconfigureEvent{opts: o, mode: mode, reply: reply}:
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
	o := ev.opts
	oldKeys := r.opts.Keys
	r.opts.Keys, r.opts.Sources = o.Keys, o.Sources
	r.opts.MinSources, r.opts.MaxDistance, r.opts.AuthSelectMode = o.MinSources, o.MaxDistance, o.AuthSelectMode
	r.sel.MinSources, r.sel.MaxDistance = o.MinSources, o.MaxDistance
	r.mode = ev.mode
	var warnings []string
	kept := make(map[*assoc]bool)
	var started []*assoc
	for _, spec := range o.Sources {
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
		r.closeRequest(a)
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
