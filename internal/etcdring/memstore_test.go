package etcdring

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
)

// memStore is an in-memory Store shared by the Keepers of a test, with
// etcd's revision, transaction and watch semantics as the Keeper uses them,
// and an outage switch: while down every call fails and watches go silent,
// as a real watch on a cluster without quorum does.
type memStore struct {
	mu       sync.Mutex
	rev      int64
	kv       map[string]StoreKV
	log      []StoreEvent // every change, for watches that start in the past
	watchers []*memWatch
	down     bool
}

type memWatch struct {
	prefix string
	ch     chan WatchBatch
	ctx    context.Context
}

var errDown = errors.New("memstore: down")

func newMemStore() *memStore { return &memStore{kv: map[string]StoreKV{}} }

func (m *memStore) dial() (Store, error) { return m, nil }

func (m *memStore) setDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

func (m *memStore) names(prefix string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (m *memStore) ReadAll(_ context.Context, prefix string, limit int64) ([]StoreKV, int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, 0, false, errDown
	}
	var out []StoreKV
	for k, v := range m.kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b StoreKV) int { return strings.Compare(a.Name, b.Name) })
	more := int64(len(out)) > limit
	if more {
		out = out[:limit]
	}
	return out, m.rev, more, nil
}

func (m *memStore) Watch(ctx context.Context, prefix string, from int64) <-chan WatchBatch {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &memWatch{prefix: prefix, ch: make(chan WatchBatch, 256), ctx: ctx}
	var past []StoreEvent
	for _, ev := range m.log {
		if ev.ModRev >= from && strings.HasPrefix(ev.Name, prefix) {
			past = append(past, ev)
		}
	}
	if len(past) > 0 {
		w.ch <- WatchBatch{Events: past}
	}
	m.watchers = append(m.watchers, w)
	return w.ch
}

func (m *memStore) Get(context.Context, string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	return nil
}

func (m *memStore) Publish(_ context.Context, name string, value []byte, latest, latestValue string, latestRev int64) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return false, errDown
	}
	if _, taken := m.kv[name]; taken || m.kv[latest].ModRev != latestRev {
		return false, nil
	}
	m.rev++
	m.change(StoreEvent{StoreKV: StoreKV{Name: name, Value: slices.Clone(value), ModRev: m.rev}},
		StoreEvent{StoreKV: StoreKV{Name: latest, Value: []byte(latestValue), ModRev: m.rev}})
	return true, nil
}

func (m *memStore) Put(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	m.rev++
	m.change(StoreEvent{StoreKV: StoreKV{Name: key, Value: slices.Clone(value), ModRev: m.rev}})
	return nil
}

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	if _, ok := m.kv[key]; !ok {
		return nil
	}
	m.rev++
	m.change(StoreEvent{Deleted: true, StoreKV: StoreKV{Name: key, ModRev: m.rev}})
	return nil
}

func (m *memStore) Close() error { return nil }

// change applies events of one revision and tells live watches; m.mu held.
func (m *memStore) change(evs ...StoreEvent) {
	for _, ev := range evs {
		if ev.Deleted {
			delete(m.kv, ev.Name)
		} else {
			m.kv[ev.Name] = ev.StoreKV
		}
		m.log = append(m.log, ev)
	}
	live := m.watchers[:0]
	for _, w := range m.watchers {
		if w.ctx.Err() != nil {
			continue
		}
		live = append(live, w)
		var mine []StoreEvent
		for _, ev := range evs {
			if strings.HasPrefix(ev.Name, w.prefix) {
				mine = append(mine, ev)
			}
		}
		if len(mine) > 0 {
			select {
			case w.ch <- WatchBatch{Events: mine}:
			default: // a test never fills 256 batches
			}
		}
	}
	m.watchers = live
}
