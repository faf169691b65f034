package tests

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"timegate/internal/report"
	"timegate/tests/harness"
)

// fleetDelay is the propagation delay the fleet tests configure: long
// enough to see a key pending everywhere before it seals, short enough to
// keep the tests quick.
const fleetDelay = 3 * time.Second

// writeWrapKey writes a fresh fleet wrapping key (64 hex digits, 0600).
func writeWrapKey(t *testing.T, dir string) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "fleet.key")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fleetGateway starts one timegate of a fleet. ke and ntp are its NTS-KE
// and NTP ports (0 = off); extra lines are appended.
func fleetGateway(t *testing.T, name, bind string, ntp, ke int, store string, extra ...string) *harness.Process {
	t.Helper()
	bins := build.Binaries(t)
	dir := t.TempDir()
	conf := fmt.Sprintf("port %d\nntsport %d\nbindaddress %s\nlocal stratum 4\nratelimit interval -6 burst 32 leak 2\n"+
		"ntsdumpdir %s\nntskeystore %s\n%s\n", ntp, ke, bind, dir, store, strings.Join(extra, "\n"))
	return harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Name: name, Args: []string{"-state", dir}})
}

// keyRing reads `gatectl keys nts list -json`.
func keyRing(t *testing.T, p *harness.Process) report.KeyRing {
	t.Helper()
	out, _, err := p.Gatectl(t, build.Binaries(t).Gatectl, "keys", "nts", "list", "-json")
	if err != nil {
		t.Fatalf("%s: keys nts list: %v", p.Name, err)
	}
	var kr report.KeyRing
	if err := json.Unmarshal([]byte(out), &kr); err != nil {
		t.Fatalf("%s: keys nts list: %v: %s", p.Name, err, out)
	}
	return kr
}

func keyWithRole(kr report.KeyRing, role string) string {
	for _, k := range kr.Keys {
		if k.Role == role {
			return k.ID
		}
	}
	return ""
}

// waitSealing waits until every gateway seals with the same key and
// returns it.
func waitSealing(t *testing.T, timeout time.Duration, gws ...*harness.Process) string {
	t.Helper()
	var id string
	harness.WaitFor(t, timeout, func() (bool, string) {
		id = keyWithRole(keyRing(t, gws[0]), "sealing")
		if id == "" {
			return false, gws[0].Name + " has no sealing key"
		}
		for _, g := range gws[1:] {
			if other := keyWithRole(keyRing(t, g), "sealing"); other != id || id == "" {
				return false, fmt.Sprintf("%s seals with %q, %s with %q", gws[0].Name, id, g.Name, other)
			}
		}
		return true, ""
	})
	return id
}

// chronySole returns chrony's only source and authdata rows: after NTS-KE
// with the KE host, chrony names the NTP host it was sent to.
func chronySole(t *testing.T, c *harness.Chrony) (harness.Source, harness.AuthData) {
	t.Helper()
	srcs, ads := c.Sources(t), c.AuthData(t)
	if len(srcs) != 1 || len(ads) != 1 {
		t.Fatalf("chrony has %d sources, %d authdata rows", len(srcs), len(ads))
	}
	return srcs[0], ads[0]
}

func soleRx(t *testing.T, c *harness.Chrony) int {
	t.Helper()
	src, _ := chronySole(t, c)
	nd := c.NTPData(t, src.Name)
	var n int
	fmt.Sscan(nd["Total valid RX"], &n)
	return n
}

// Issue 12: two gateways share one ring through a 3-member etcd cluster.
// A is an NTS-KE front end only (port 0) announcing B (ntsntpserver
// 127.0.0.2 port N); B serves NTP only (ntsport 0). A real chronyd does
// NTS-KE with A and keeps authenticated sync with B — B opens the cookies
// A sealed and the ones it seals itself — with no NAK and no new NTS-KE,
// across fleet rotations, the loss of one etcd member, a full etcd outage
// (with B restarted from its local copy meanwhile) and etcd's return.
func TestFleetSplitChrony(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	etcd := harness.StartEtcd(t, 3)
	dir := t.TempDir()
	cert, key := harness.WriteCert(t, dir)
	store := fmt.Sprintf("etcd://%s/timegate/fleet-a wrapkey %s delay %d", etcd.Endpoints(), writeWrapKey(t, dir), int(fleetDelay.Seconds()))
	ntpPort, kePort := harness.FreeUDPPort(t), harness.FreeTCPPort(t)
	a := fleetGateway(t, "timegate A (KE)", "127.0.0.1", 0, kePort, store,
		"ntsservercert "+cert, "ntsserverkey "+key, fmt.Sprintf("ntsntpserver 127.0.0.2 port %d", ntpPort))
	b := fleetGateway(t, "timegate B (NTP)", "127.0.0.2", ntpPort, 0, store)
	first := waitSealing(t, 30*time.Second, a, b)
	t.Logf("fleet's first key %s seals on A and B", first)

	c := harness.StartChrony(t, harness.ChronyOptions{
		Servers:     []harness.ServerLine{{Port: 123, NTS: true, NTSPort: kePort, Poll: &harness.PollRange{Min: 0, Max: 0}}},
		TrustedCert: cert,
	})
	harness.WaitFor(t, 40*time.Second, func() (bool, string) {
		srcs, ads := c.Sources(t), c.AuthData(t)
		if len(srcs) != 1 || len(ads) != 1 {
			return false, fmt.Sprintf("%d sources", len(srcs))
		}
		return srcs[0].Name == "127.0.0.2" && srcs[0].Selected() && ads[0].Mode == "NTS" && ads[0].Cookies == 8,
			fmt.Sprintf("%+v %+v", srcs[0], ads[0])
	})

	steady := func(phase string) {
		t.Helper()
		rx := soleRx(t, c)
		harness.WaitFor(t, 20*time.Second, func() (bool, string) {
			n := soleRx(t, c)
			return n >= rx+3, fmt.Sprintf("valid rx %d, was %d", n, rx)
		})
		src, ad := chronySole(t, c)
		if ad.KeyID != 1 || ad.NAK || ad.Mode != "NTS" || !src.Selected() {
			t.Fatalf("%s: chrony ran a new NTS-KE, got a NAK or dropped B: %+v %+v", phase, ad, src)
		}
		if nd := c.NTPData(t, src.Name); nd["Authenticated"] != "Yes" {
			t.Fatalf("%s: not authenticated: %v", phase, nd)
		}
	}
	steady("B serving cookies A sealed")

	rotate := func(phase string, via *harness.Process) {
		t.Helper()
		before := waitSealing(t, 10*time.Second, a, b)
		known := map[string]bool{}
		for _, k := range keyRing(t, a).Keys {
			known[k.ID] = true
		}
		start := time.Now()
		if out, stderr, err := via.Gatectl(t, build.Binaries(t).Gatectl, "keys", "nts", "rotate", "--fleet"); err != nil {
			t.Fatalf("%s: rotate --fleet: %v\n%s%s", phase, err, out, stderr)
		}
		// The new key, once both gateways list it, and its role on B then.
		var next string
		var onB report.Key
		harness.WaitFor(t, 10*time.Second, func() (bool, string) {
			next = ""
			for _, k := range keyRing(t, a).Keys {
				if !known[k.ID] {
					next = k.ID
				}
			}
			for _, k := range keyRing(t, b).Keys {
				if k.ID == next && next != "" {
					onB = k
					return true, ""
				}
			}
			return false, fmt.Sprintf("new key %q not listed by both gateways", next)
		})
		loaded := time.Since(start)
		if d := onB.Seals.Sub(onB.Created); d < fleetDelay {
			t.Fatalf("%s: key %s seals %v after its publication, before the %v delay", phase, next, d, fleetDelay)
		}
		// Seen while pending (unless this machine took longer than the delay
		// to show it): pending everywhere, the old key still sealing.
		if onB.Role == "next" {
			if s := keyWithRole(keyRing(t, b), "sealing"); s != before && time.Since(start) < fleetDelay {
				t.Fatalf("%s: B seals with %s before the propagation delay ended (was %s)", phase, s, before)
			}
		}
		harness.WaitFor(t, fleetDelay+10*time.Second, func() (bool, string) {
			sa, sb := keyWithRole(keyRing(t, a), "sealing"), keyWithRole(keyRing(t, b), "sealing")
			return sa == next && sb == next, fmt.Sprintf("A seals with %s, B with %s, published %s", sa, sb, next)
		})
		t.Logf("%s: key %s loaded by both gateways %v after publication, sealing everywhere after %v",
			phase, next, loaded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		steady(phase)
	}
	rotate("rotation 1", a)
	rotate("rotation 2 (published by the NTP host)", b)

	etcd.Stop(t, 0)
	rotate("rotation with one etcd member of three down", a)
	etcd.Start(t, 0)
	etcd.WaitCaughtUp(t, 0)

	for i := range etcd.Members {
		etcd.Stop(t, i)
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		ka, kb := keyRing(t, a), keyRing(t, b)
		return !ka.Fleet.Connected && !kb.Fleet.Connected, "gateways still think etcd answers"
	})
	if _, _, err := a.Gatectl(t, build.Binaries(t).Gatectl, "keys", "nts", "rotate", "--fleet"); err == nil {
		t.Fatal("a fleet rotation was accepted while etcd is down")
	}
	if out, _, _ := a.Gatectl(t, build.Binaries(t).Gatectl, "status"); !strings.Contains(out, "fleet key store unreachable") {
		t.Fatalf("gatectl status does not raise the alarm:\n%s", out)
	}
	steady("etcd down")
	b.Restart(t) // from its local copy alone
	if kb := keyRing(t, b); keyWithRole(kb, "sealing") == "" || kb.Fleet.Connected {
		t.Fatalf("B restarted during the outage has no ring: %+v", kb)
	}
	steady("etcd down, B restarted")

	for i := range etcd.Members {
		etcd.Start(t, i)
	}
	harness.WaitFor(t, 60*time.Second, func() (bool, string) {
		ka, kb := keyRing(t, a), keyRing(t, b)
		return ka.Fleet.Connected && kb.Fleet.Connected, "gateways have not reconnected"
	})
	rotate("rotation after etcd's return", a)

	// A key leak: rotate, wait until the new key seals, revoke the rest
	// fleet-wide from one gateway; both drop every superseded key at once,
	// long before their grace period would end.
	gatectl := build.Binaries(t).Gatectl
	if _, _, err := b.Gatectl(t, gatectl, "keys", "nts", "prune"); err == nil {
		t.Fatal("a local prune was accepted on a fleet gateway")
	}
	rotate("rotation before the revocation", b)
	sealing := waitSealing(t, 10*time.Second, a, b)
	start := time.Now()
	if out, stderr, err := b.Gatectl(t, gatectl, "keys", "nts", "prune", "--fleet"); err != nil || !strings.Contains(out, "dropped") {
		t.Fatalf("prune --fleet: %v\n%s%s", err, out, stderr)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		for _, g := range []*harness.Process{a, b} {
			kr := keyRing(t, g)
			if len(kr.Keys) != 1 || keyWithRole(kr, "sealing") != sealing || kr.Fleet.Cutoff.IsZero() {
				return false, fmt.Sprintf("%s still lists %+v (cutoff %v)", g.Name, kr.Keys, kr.Fleet.Cutoff)
			}
		}
		return true, ""
	})
	resp, err := etcdClient(t, etcd).Get(context.Background(), "/timegate/fleet-a/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	if n := strings.Count(strings.Join(keys, " "), "/keys/"); n != 1 || !strings.Contains(strings.Join(keys, " "), "/timegate/fleet-a/cutoff") {
		t.Fatalf("etcd after the revocation holds %v: want the sealing key and the cutoff", keys)
	}
	t.Logf("revoked fleet-wide: only %s left on A and B %v after the command, and in etcd", sealing, time.Since(start).Round(time.Millisecond))
}

// etcdClient connects the test itself to the cluster, as a hostile writer
// with write access to etcd but not the fleet's wrapping key.
func etcdClient(t *testing.T, e *harness.Etcd) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(e.Endpoints(), ","), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Issue 12: whoever can write etcd but lacks the wrapping key cannot make
// a gateway take or drop a key: a tampered entry, an unsealed (plaintext)
// one and a stray name are refused and audited, and deleting the sealing
// key early leaves it in service (audited too). Replays of pruned entries
// are refused by the same rules (fleet.TestReplayAndEarlyDeleteContained).
func TestFleetRefusesTamperedEntries(t *testing.T) {
	etcd := harness.StartEtcd(t, 1)
	dir := t.TempDir()
	cert, key := harness.WriteCert(t, dir)
	auditLog := filepath.Join(dir, "audit.jsonl")
	prefix := "/timegate/fleet-t"
	store := fmt.Sprintf("etcd://%s%s wrapkey %s delay %d", etcd.Endpoints(), prefix, writeWrapKey(t, dir), int(fleetDelay.Seconds()))
	ntpPort, kePort := harness.FreeUDPPort(t), harness.FreeTCPPort(t)
	g := fleetGateway(t, "timegate", "127.0.0.1", ntpPort, kePort, store,
		"ntsservercert "+cert, "ntsserverkey "+key, "auditlog "+auditLog+" nosync", "auditcheckpoint records 1 interval 1")
	sealing := waitSealing(t, 30*time.Second, g)
	before := keyRing(t, g)

	cli := etcdClient(t, etcd)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+"/keys/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd holds %v entries: %v", resp, err)
	}
	genuine := resp.Kvs[0]
	tampered := append([]byte(nil), genuine.Value...)
	tampered[len(tampered)-20] ^= 1
	plain := append([]byte("TGFK\x01\x00\x00\x00\x0b\xad\xf0\x0d"), make([]byte, 76)...) // a master key in the clear
	writes := map[string][]byte{
		string(genuine.Key):           tampered, // rewritten in place
		prefix + "/keys/0badf00d":     plain,
		prefix + "/keys/not-a-key-id": []byte("x"),
	}
	for k, v := range writes {
		if _, err := cli.Put(ctx, k, string(v)); err != nil {
			t.Fatal(err)
		}
	}
	// ... and the genuine entry deleted early: the gateway keeps it.
	if _, err := cli.Delete(ctx, string(genuine.Key)); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		kr := keyRing(t, g)
		return kr.Fleet.Refused >= 4, fmt.Sprintf("refused %d", kr.Fleet.Refused)
	})
	after := keyRing(t, g)
	if keyWithRole(after, "sealing") != sealing || len(after.Keys) != len(before.Keys) {
		t.Fatalf("ring changed: before %+v after %+v", before.Keys, after.Keys)
	}
	// NTS still works with the kept key.
	out, stderr, err := harness.RunGatectl(t, build.Binaries(t).Gatectl, "query", "-nts", "-ca", cert, "-json", fmt.Sprintf("localhost:%d", kePort))
	if err != nil {
		t.Fatalf("NTS query after the attack: %v\n%s%s", err, out, stderr)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		data, _ := os.ReadFile(auditLog)
		n := strings.Count(string(data), `"key.refused"`)
		return n >= 4, fmt.Sprintf("%d key.refused records", n)
	})
	data, _ := os.ReadFile(auditLog)
	for _, want := range []string{"0badf00d", "not-a-key-id", "does not authenticate", "deleted before its grace"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("audit trail lacks %q", want)
		}
	}
}

// Issue 12: the fleet store over TLS with a client certificate and etcd
// authentication (user and password, with a role limited to the fleet's
// prefix): the gateway connects and takes the fleet's first key; a wrong
// password keeps it unconnected (alarmed) rather than failing the start.
func TestFleetStoreTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	ca := harness.NewTestCA(t, dir, "etcd")
	srvCert, srvKey := ca.IssueBoth(t, "etcd-server")
	etcd := harness.StartEtcdWith(t, 1, harness.EtcdOptions{CA: ca.CertPath, Cert: srvCert, Key: srvKey})
	adminCert, adminKey := ca.Issue(t, "root", true)
	gwCert, gwKey := ca.Issue(t, "timegate", true)

	tlsCfg, err := (&tlsFiles{ca: ca.CertPath, cert: adminCert, key: adminKey}).config()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(etcd.Endpoints(), ","), DialTimeout: 5 * time.Second, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "root-secret"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "fleet"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "fleet", "/timegate/fleet-s/", clientv3.GetPrefixRangeEnd("/timegate/fleet-s/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "timegate", "gw-secret"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "timegate", "fleet"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("etcd auth set-up: %v", err)
		}
	}
	pw := filepath.Join(dir, "etcd-password")
	if err := os.WriteFile(pw, []byte("gw-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store := fmt.Sprintf("etcd://%s/timegate/fleet-s wrapkey %s delay 2 ca %s cert %s key %s user timegate passwordfile %s",
		etcd.Endpoints(), writeWrapKey(t, dir), ca.CertPath, gwCert, gwKey, pw)
	g := fleetGateway(t, "timegate", "127.0.0.1", harness.FreeUDPPort(t), 0, store)
	waitSealing(t, 30*time.Second, g)
	if kr := keyRing(t, g); !kr.Fleet.Connected {
		t.Fatalf("not connected: %+v", kr.Fleet)
	}

	if err := os.WriteFile(pw, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.Restart(t)
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		f := keyRing(t, g).Fleet
		return !f.Connected && f.LastError != "", fmt.Sprintf("%+v", f)
	})
	if kr := keyRing(t, g); keyWithRole(kr, "sealing") == "" {
		t.Fatalf("the local copy does not serve while etcd refuses the gateway: %+v", kr)
	}
}

// tlsFiles builds the test's own TLS client configuration for etcd.
type tlsFiles struct{ ca, cert, key string }

func (f *tlsFiles) config() (*tls.Config, error) {
	pemData, err := os.ReadFile(f.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// ntpAnswers reports whether the gateway at addr:port answers a plain NTP
// query from 127.0.0.1 within a second.
func ntpAnswers(t *testing.T, host string, port int) bool {
	t.Helper()
	_, _, err := harness.RunGatectl(t, build.Binaries(t).Gatectl, "query", "-port", fmt.Sprint(port), "-timeout", "1s", host)
	return err == nil
}

// Issue 12 part 3: access policy from the fleet store. A policy published
// through one gateway applies on every gateway in place of its file's
// rules, survives an etcd outage and a restart (local copy), is replaced by
// a newer one, a policy with other directives is refused, a tampered one is
// refused and audited, and deleting it brings back each file's policy.
func TestFleetPolicy(t *testing.T) {
	etcd := harness.StartEtcd(t, 1)
	dir := t.TempDir()
	prefix := "/timegate/fleet-p"
	store := fmt.Sprintf("etcd://%s%s wrapkey %s delay 2", etcd.Endpoints(), prefix, writeWrapKey(t, dir))
	udp := harness.FreeUDPPorts(t, 2)
	pg, ph := udp[0], udp[1]
	g := fleetGateway(t, "timegate G", "127.0.0.1", pg, 0, store)
	h := fleetGateway(t, "timegate H", "127.0.0.1", ph, 0, store)
	waitSealing(t, 30*time.Second, g, h)
	if !ntpAnswers(t, "127.0.0.1", pg) || !ntpAnswers(t, "127.0.0.1", ph) {
		t.Fatal("no NTP answer under the files' policy")
	}
	publish := func(text string) error {
		t.Helper()
		f := filepath.Join(dir, "policy.conf")
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := g.Gatectl(t, build.Binaries(t).Gatectl, "policy", "publish", f)
		return err
	}
	bothSilent := func() (bool, string) {
		return !ntpAnswers(t, "127.0.0.1", pg) && !ntpAnswers(t, "127.0.0.1", ph), "a gateway still answers"
	}
	bothAnswer := func() (bool, string) {
		return ntpAnswers(t, "127.0.0.1", pg) && ntpAnswers(t, "127.0.0.1", ph), "a gateway does not answer"
	}
	if err := publish("restrict default ignore\n"); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, bothSilent)
	if kr := keyRing(t, h); kr.Fleet.Policy.IsZero() {
		t.Fatalf("H does not report the fleet policy: %+v", kr.Fleet)
	}
	if err := publish("port 123\nrestrict default\n"); err == nil {
		t.Fatal("a policy setting a port was published")
	}

	etcd.Stop(t, 0)
	h.Restart(t)
	harness.WaitFor(t, 10*time.Second, bothSilent) // H restarted from its local copy
	etcd.Start(t, 0)
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		return keyRing(t, g).Fleet.Connected && keyRing(t, h).Fleet.Connected, "not reconnected"
	})
	if err := publish("restrict default limited\nratelimit interval -6 burst 32\n"); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, bothAnswer)

	cli := etcdClient(t, etcd)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+"/policy")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("policy in etcd: %v", err)
	}
	bad := append([]byte(nil), resp.Kvs[0].Value...)
	bad[len(bad)-1] ^= 1
	refused := keyRing(t, g).Fleet.Refused
	if _, err := cli.Put(ctx, prefix+"/policy", string(bad)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, prefix+"/policy", "restrict default ignore\n"); err != nil { // unsealed
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		n := keyRing(t, g).Fleet.Refused
		return n >= refused+2, fmt.Sprintf("refused %d, was %d", n, refused)
	})
	if ok, why := bothAnswer(); !ok {
		t.Fatalf("a refused policy changed what is served: %s", why)
	}
	if _, err := cli.Delete(ctx, prefix+"/policy"); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		return keyRing(t, g).Fleet.Policy.IsZero() && keyRing(t, h).Fleet.Policy.IsZero(), "fleet policy still in service"
	})
	if ok, why := bothAnswer(); !ok {
		t.Fatalf("files' policy not back: %s", why)
	}
}
