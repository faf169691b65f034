package etcdring

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Store is what a Keeper needs of etcd, in its own terms: the Keeper's loop
// is tested against an in-memory Store, and Etcd adapts the real client.
type Store interface {
	// ReadAll reads every key under prefix (at most limit; more reports
	// that there were more) and the store revision of the read.
	ReadAll(ctx context.Context, prefix string, limit int64) (kvs []StoreKV, rev int64, more bool, err error)
	// Watch streams changes under prefix after revision from; the channel
	// closes, or delivers an error, when the watch ends.
	Watch(ctx context.Context, prefix string, from int64) <-chan WatchBatch
	// Get reads one key: a quorum read, the liveness check.
	Get(ctx context.Context, key string) error
	// Publish writes name and latest (with latestValue) in one transaction,
	// if latest's modification revision is still latestRev and name does
	// not exist; ok false means another writer came first.
	Publish(ctx context.Context, name string, value []byte, latest, latestValue string, latestRev int64) (ok bool, err error)
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	Close() error
}

// StoreKV is one key, its value and the revision that last changed it.
type StoreKV struct {
	Name   string
	Value  []byte
	ModRev int64
}

// StoreEvent is one change seen by a watch.
type StoreEvent struct {
	Deleted bool
	StoreKV
}

// WatchBatch is what one watch response carries.
type WatchBatch struct {
	Events []StoreEvent
	Err    error
}

// Etcd adapts an etcd client to Store.
func Etcd(cli *clientv3.Client) Store { return etcdStore{cli} }

type etcdStore struct{ cli *clientv3.Client }

func (s etcdStore) ReadAll(ctx context.Context, prefix string, limit int64) ([]StoreKV, int64, bool, error) {
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithLimit(limit))
	if err != nil {
		return nil, 0, false, err
	}
	out := make([]StoreKV, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, StoreKV{Name: string(kv.Key), Value: kv.Value, ModRev: kv.ModRevision})
	}
	return out, resp.Header.Revision, resp.More, nil
}

func (s etcdStore) Watch(ctx context.Context, prefix string, from int64) <-chan WatchBatch {
	out := make(chan WatchBatch)
	// A watch on a member cut off from the leader must end, not go quiet.
	wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
	go func() {
		defer close(out)
		for resp := range wch {
			b := WatchBatch{Err: resp.Err()}
			for _, ev := range resp.Events {
				b.Events = append(b.Events, StoreEvent{Deleted: ev.Type == clientv3.EventTypeDelete,
					StoreKV: StoreKV{Name: string(ev.Kv.Key), Value: ev.Kv.Value, ModRev: ev.Kv.ModRevision}})
			}
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (s etcdStore) Get(ctx context.Context, key string) error {
	_, err := s.cli.Get(ctx, key)
	return err
}

func (s etcdStore) Publish(ctx context.Context, name string, value []byte, latest, latestValue string, latestRev int64) (bool, error) {
	resp, err := s.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.ModRevision(latest), "=", latestRev),
		clientv3.Compare(clientv3.CreateRevision(name), "=", 0),
	).Then(
		clientv3.OpPut(name, string(value)),
		clientv3.OpPut(latest, latestValue),
	).Commit()
	if err != nil {
		return false, fmt.Errorf("etcdring: publish: %w", err)
	}
	return resp.Succeeded, nil
}

func (s etcdStore) Put(ctx context.Context, key string, value []byte) error {
	_, err := s.cli.Put(ctx, key, string(value))
	return err
}

func (s etcdStore) Delete(ctx context.Context, key string) error {
	_, err := s.cli.Delete(ctx, key)
	return err
}

func (s etcdStore) Close() error { return s.cli.Close() }
