package harness

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Etcd is a cluster of real etcd members (Debian's etcd-server, 3.4) on
// loopback ports, each a Process with its data in its own directory.
type Etcd struct {
	Members []*Process
	Clients []int // client port of each member
	tls     bool
}

// StartEtcd starts an n-member cluster and returns once every member holds
// its client port; etcd's quorum may take a moment longer (callers wait for
// what they need, e.g. a successful write). It skips the test without the
// etcd binary, and fails it under CI=true.
func StartEtcd(t testing.TB, n int) *Etcd {
	t.Helper()
	return StartEtcdWith(t, n, EtcdOptions{})
}

// EtcdOptions turn on TLS for etcd's clients (peers stay on plain loopback).
type EtcdOptions struct {
	// CA, Cert, Key: with all three set the members serve https and require
	// client certificates signed by CA (etcd's --client-cert-auth).
	CA, Cert, Key string
}

// StartEtcdWith is StartEtcd with options.
func StartEtcdWith(t testing.TB, n int, o EtcdOptions) *Etcd {
	t.Helper()
	bin := RequireBinary(t, "etcd")
	for attempt := 1; ; attempt++ {
		e, err := startEtcd(t, bin, n, o)
		if err == nil {
			return e
		}
		// Another process can take a port between FreeTCPPorts and etcd's
		// bind; a new cluster on new ports is the only cure (etcd has no
		// port 0 for its peers).
		if errors.Is(err, errPortTaken) && attempt < startAttempts {
			t.Logf("%v; starting the cluster on other ports", err)
			continue
		}
		t.Fatalf("%v", err)
	}
}

func startEtcd(t testing.TB, bin string, n int, o EtcdOptions) (*Etcd, error) {
	t.Helper()
	ports := FreeTCPPorts(t, 2*n)
	e := &Etcd{Clients: ports[:n], tls: o.CA != ""}
	peers := ports[n:]
	var cluster []string
	for i := range n {
		cluster = append(cluster, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, peers[i]))
	}
	token := fmt.Sprintf("timegate-test-%d", time.Now().UnixNano())
	for i := range n {
		p := newProcess(t, fmt.Sprintf("etcd m%d", i), "etcd")
		scheme := "http"
		if o.CA != "" {
			scheme = "https"
		}
		client := scheme + "://127.0.0.1:" + strconv.Itoa(e.Clients[i])
		peer := "http://127.0.0.1:" + strconv.Itoa(peers[i])
		p.path, p.diesBySIGTERM = bin, true
		p.args = []string{"--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(p.Dir, "data"),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-token", token,
			"--initial-cluster-state", "new", "--log-level", "warn"}
		if o.CA != "" {
			p.args = append(p.args, "--cert-file", o.Cert, "--key-file", o.Key, "--trusted-ca-file", o.CA, "--client-cert-auth")
		}
		port := e.Clients[i]
		p.ready = func() (bool, string, error) {
			ok, s := portsStatus(p.Pid(), nil, []int{port})
			return ok, s, nil
		}
		e.Members = append(e.Members, p)
	}
	// Start them all before waiting on any: a member of a new cluster
	// serves its client port before its peers are up.
	for _, p := range e.Members {
		if err := p.start(readyTimeout); err != nil {
			if strings.Contains(p.Log(), "address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			var stopErrs []error
			for _, m := range e.Members {
				stopErrs = append(stopErrs, m.Stop())
			}
			if errors.Is(err, errPortTaken) {
				return nil, err // a lost race; the other members' exit status tells nothing
			}
			return nil, errors.Join(append([]error{err}, stopErrs...)...)
		}
	}
	return e, nil
}

// Endpoints is the comma-separated HOST:PORT list of every member's client URL.
func (e *Etcd) Endpoints() string {
	var out []string
	for _, p := range e.Clients {
		out = append(out, "127.0.0.1:"+strconv.Itoa(p))
	}
	return strings.Join(out, ",")
}

// Stop stops member i (SIGTERM).
func (e *Etcd) Stop(t testing.TB, i int) {
	t.Helper()
	if err := e.Members[i].Stop(); err != nil {
		t.Fatalf("%v", err)
	}
}

// Start restarts member i on its data directory. It returns once the
// member holds its client port, which is before it has rejoined the
// cluster; see WaitCaughtUp.
func (e *Etcd) Start(t testing.TB, i int) {
	t.Helper()
	if err := e.Members[i].start(readyTimeout); err != nil {
		t.Fatalf("%v", err)
	}
}

// WaitCaughtUp waits until member i answers a linearizable read itself,
// which it can only do once it follows the leader and has applied the log
// up to the leader's commit index. A member stopped before that (a
// restart followed at once by an outage, on a slow machine) may still be
// replaying its log, which is not the outage a test means to stage.
func (e *Etcd) WaitCaughtUp(t testing.TB, i int) {
	t.Helper()
	if e.tls {
		t.Fatalf("WaitCaughtUp: not implemented for a cluster with client TLS")
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"127.0.0.1:" + strconv.Itoa(e.Clients[i])},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd m%d: %v", i, err)
	}
	defer cli.Close()
	WaitFor(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := cli.Get(ctx, "/timegate-test/caught-up"); err != nil {
			return false, fmt.Sprintf("etcd m%d: linearizable read: %v", i, err)
		}
		return true, ""
	})
}
