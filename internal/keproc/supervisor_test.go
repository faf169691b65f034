//go:build linux

package keproc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/internal/kelisten"
	"timegate/nts"
	"timegate/ratelimit"
)

// TestMain makes this test binary the helper the Supervisors under test
// start, and, for TestParentKilled, a parent of its own.
func TestMain(m *testing.M) {
	if IsHelper() {
		os.Exit(HelperMain())
	}
	if os.Getenv("KEPROC_TEST_PARENT") == "1" {
		os.Exit(testParent())
	}
	os.Exit(m.Run())
}

type fixture struct {
	sup    *Supervisor
	addr   string
	pool   *x509.CertPool
	cert   atomic.Pointer[tls.Certificate]
	ring   atomic.Pointer[nts.KeyRing]
	cancel context.CancelFunc
	done   chan struct{}
	// changed is the Supervisor's RingChanged.
	changed chan struct{}

	mu       sync.Mutex
	failures []Failure
	exits    []string // OnExit calls: "helper pid"
}

func newCert(t testing.TB, name string) (*tls.Certificate, *x509.CertPool) {
	cert, pool, err := makeCert(name)
	if err != nil {
		t.Fatal(err)
	}
	return cert, pool
}

func makeCert(name string) (*tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{"ke.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

func listenFile(t testing.TB) (*os.File, string) {
	f, addr, err := makeListener()
	if err != nil {
		t.Fatal(err)
	}
	return f, addr
}

func makeListener() (*os.File, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	return f, ln.Addr().String(), err
}

func start(t *testing.T, processes int) *fixture {
	t.Helper()
	return startWith(t, processes, ChildConfig{})
}

func startWith(t *testing.T, processes int, cc ChildConfig) *fixture {
	t.Helper()
	fx := &fixture{done: make(chan struct{}), changed: make(chan struct{}, 1)}
	cert, pool := newCert(t, "first")
	fx.cert.Store(cert)
	fx.pool = pool
	ring, err := nts.NewKeyRing(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fx.ring.Store(ring)
	f, addr := listenFile(t)
	t.Cleanup(func() { f.Close() })
	fx.addr = addr
	fx.sup, err = New(Config{
		Processes:   processes,
		Listeners:   []*os.File{f},
		Child:       ChildConfig{Options: nts.NegotiateOptions{NTPPort: 11123}, LogLevel: "warn", Nice: cc.Nice, Idle: cc.Idle, RateLimit: cc.RateLimit},
		Cert:        fx.cert.Load,
		Ring:        fx.ring.Load,
		RingChanged: fx.changed,
		OnFailure: func(fl Failure) {
			fx.mu.Lock()
			fx.failures = append(fx.failures, fl)
			fx.mu.Unlock()
		},
		OnExit: func(helper, pid int, err error) {
			fx.mu.Lock()
			fx.exits = append(fx.exits, fmt.Sprintf("%d %d %v", helper, pid, err))
			fx.mu.Unlock()
		},
		Log: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fx.cancel = cancel
	go func() {
		fx.sup.Run(ctx)
		close(fx.done)
	}()
	t.Cleanup(fx.stop)
	select {
	case <-fx.sup.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("helpers not ready after 30 s")
	}
	return fx
}

func (fx *fixture) stop() {
	fx.cancel()
	<-fx.done
}

func (fx *fixture) exchange(t *testing.T) *nts.KEResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := nts.Exchange(ctx, nil, fx.addr, &tls.Config{RootCAs: fx.pool, ServerName: "ke.test"}, nil)
	if err != nil {
		t.Fatalf("NTS-KE through the helper: %v", err)
	}
	return res
}

func helperPIDs(fx *fixture) []int {
	fx.sup.mu.Lock()
	defer fx.sup.mu.Unlock()
	var pids []int
	for _, c := range fx.sup.live {
		if c != nil {
			pids = append(pids, c.cmd.Process.Pid)
		}
	}
	return pids
}

// waitFor polls cond: a helper restarts on its own time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 20*time.Second, what, cond)
}

func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A helper serves NTS-KE with the parent's certificate and ring; killed,
// it is started again, and the counters carry on from where they were.
func TestHelperServesAndRestarts(t *testing.T) {
	fx := start(t, 1)
	res := fx.exchange(t)
	if res.NTPPort != 11123 || len(res.Cookies) != nts.MaxCookies {
		t.Fatalf("port %d, %d cookies", res.NTPPort, len(res.Cookies))
	}
	if _, err := fx.ring.Load().OpenCookie(res.Cookies[0]); err != nil {
		t.Fatalf("the helper's cookie does not open with the parent's ring: %v", err)
	}
	// The helper counts a session once it has closed it, after the
	// client has its keys.
	waitFor(t, "one session counted", func() bool { return fx.sup.Stats().KE.Served == 1 })
	if st := fx.sup.Stats(); st.KE.Accepted != 1 {
		t.Fatalf("stats after one session: %+v", st.KE)
	}
	old := helperPIDs(fx)
	if len(old) != 1 {
		t.Fatalf("%d helpers", len(old))
	}
	if err := syscall.Kill(old[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new helper", func() bool {
		p := helperPIDs(fx)
		return len(p) == 1 && p[0] != old[0]
	})
	fx.mu.Lock()
	exits := fx.exits
	fx.mu.Unlock()
	if want := fmt.Sprintf("0 %d process %d signal: killed", old[0], old[0]); len(exits) != 1 || exits[0] != want || fx.sup.Restarts() != 1 {
		t.Fatalf("OnExit told %q, restarts %d; want [%q], 1", exits, fx.sup.Restarts(), want)
	}
	fx.exchange(t)
	// 1 from the killed helper's last report, 1 from the new one: the
	// counters never go back.
	waitFor(t, "two sessions counted", func() bool { return fx.sup.Stats().KE.Served == 2 })
}

// tryExchange is one NTS-KE session; an error is a refusal.
func (fx *fixture) tryExchange() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := nts.Exchange(ctx, nil, fx.addr, &tls.Config{RootCAs: fx.pool, ServerName: "ke.test"}, nil)
	return err
}

// passes counts the sessions of n that were served.
func (fx *fixture) passes(n int) int {
	ok := 0
	for range n {
		if fx.tryExchange() == nil {
			ok++
		}
	}
	return ok
}

// A reloaded ntsratelimit reaches the running helper before SetRateLimit
// returns (the same settings again keep its table, and a source over its
// limit stays over it), a helper started later has it from the start, and
// nil turns it off.
func TestHelperFollowsRateLimit(t *testing.T) {
	fx := start(t, 1)
	if got := fx.passes(4); got != 4 || fx.sup.Stats().Rate != nil {
		t.Fatalf("no limit: %d of 4 sessions served, rate stats %v", got, fx.sup.Stats().Rate)
	}
	rc := ratelimit.Config{Interval: 6, Burst: 2, Leak: 1, PrefixV4: 32, PrefixV6: 64, Size: 64}
	if err := fx.sup.SetRateLimit(&rc); err != nil {
		t.Fatal(err)
	}
	if got := fx.passes(4); got != rc.Burst {
		t.Fatalf("limit set: %d of 4 sessions served, want the burst of %d", got, rc.Burst)
	}
	same := rc
	if err := fx.sup.SetRateLimit(&same); err != nil {
		t.Fatal(err)
	}
	if got := fx.passes(2); got != 0 {
		t.Fatalf("same limit again: %d of 2 sessions served: the table forgot the source", got)
	}
	if st := fx.sup.Stats().Rate; st == nil || st.Passed != 2 {
		t.Fatalf("rate stats %+v", st)
	}
	old := helperPIDs(fx)
	if err := syscall.Kill(old[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new helper", func() bool {
		p := helperPIDs(fx)
		return len(p) == 1 && p[0] != old[0]
	})
	if got := fx.passes(4); got != rc.Burst {
		t.Fatalf("restarted helper: %d of 4 sessions served, want the burst of %d", got, rc.Burst)
	}
	if err := fx.sup.SetRateLimit(nil); err != nil {
		t.Fatal(err)
	}
	if got := fx.passes(3); got != 3 {
		t.Fatalf("limit off: %d of 3 sessions served", got)
	}
}

// A rotated ring and a new certificate reach the helpers before PushRing
// and PushCert return.
func TestHelperFollowsRingAndCert(t *testing.T) {
	fx := start(t, 2)
	next, err := fx.ring.Load().Rotated(time.Now(), rand.Reader, nts.DefaultKeep)
	if err != nil {
		t.Fatal(err)
	}
	fx.ring.Store(next)
	if err := fx.sup.PushRing(); err != nil {
		t.Fatal(err)
	}
	cert, pool := newCert(t, "second")
	fx.cert.Store(cert)
	if err := fx.sup.PushCert(); err != nil {
		t.Fatal(err)
	}
	fx.pool = pool
	// Both helpers share the socket: several sessions reach both.
	for range 6 {
		res := fx.exchange(t)
		if id := binary.BigEndian.Uint32(res.Cookies[0]); id != next.CurrentID() {
			t.Fatalf("cookie sealed with key %d, want the rotated ring's %d", id, next.CurrentID())
		}
		if cn := res.TLS.PeerCertificates[0].Subject.CommonName; cn != "second" {
			t.Fatalf("served certificate %q, want the new one", cn)
		}
	}
	waitFor(t, "six sessions counted over two helpers", func() bool { return fx.sup.Stats().KE.Served == 6 })
}

// ntskenice: every thread of a helper, those started while it serves
// too, runs at the nice value, and under the helper's name.
func TestHelperNiceAndName(t *testing.T) {
	fx := startWith(t, 1, ChildConfig{Nice: 7})
	for range 4 { // sessions make the runtime start threads
		fx.exchange(t)
	}
	for _, th := range threads(t, helperPIDs(fx)[0]) {
		if th.comm != helperName || th.field(19) != "7" {
			t.Errorf("thread %d: name %q nice %s, want %q 7", th.tid, th.comm, th.field(19), helperName)
		}
	}
}

// thread is what /proc/PID/task/TID/stat says of one thread.
type thread struct {
	tid    int
	comm   string
	fields []string // from field 3 (state) on
}

// field is stat field n, numbered from 1 as in proc(5).
func (th thread) field(n int) string { return th.fields[n-3] }

// threads reads every thread of pid (the runtime starts some while we
// read; one that exits meanwhile is left out).
func threads(t *testing.T, pid int) []thread {
	t.Helper()
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	var out []thread
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		tid, _ := strconv.Atoi(string(bytes.TrimSpace(b[:bytes.IndexByte(b, '(')])))
		out = append(out, thread{tid: tid, comm: string(b[bytes.IndexByte(b, '(')+1 : i]), fields: strings.Fields(string(b[i+1:]))})
	}
	if len(out) == 0 {
		t.Fatalf("no threads of %d", pid)
	}
	return out
}

// ntskenice idle: every thread of a helper, those started while it
// serves too, is in SCHED_IDLE.
func TestHelperIdle(t *testing.T) {
	fx := startWith(t, 1, ChildConfig{Idle: true, Nice: 7}) // idle wins
	for range 4 {
		fx.exchange(t)
	}
	for _, th := range threads(t, helperPIDs(fx)[0]) {
		if th.field(41) != strconv.Itoa(schedIdle) { // policy
			t.Errorf("thread %d: policy %s, want SCHED_IDLE (%d)", th.tid, th.field(41), schedIdle)
		}
	}
}

// A signal on RingChanged is enough: the helpers seal with the new ring
// right after, with no PushRing and no poll.
func TestHelperFollowsRingSignal(t *testing.T) {
	fx := start(t, 1)
	next, err := fx.ring.Load().Rotated(time.Now(), rand.Reader, nts.DefaultKeep)
	if err != nil {
		t.Fatal(err)
	}
	fx.ring.Store(next)
	fx.changed <- struct{}{}
	// Well within ringPollPeriod, which would also bring the ring.
	waitWithin(t, ringPollPeriod/2, "a cookie of the new key", func() bool {
		return binary.BigEndian.Uint32(fx.exchange(t).Cookies[0]) == next.CurrentID()
	})
}

// A session that fails in a helper reaches the parent's OnFailure, with
// the client's address and the reason.
func TestHelperFailuresReachParent(t *testing.T) {
	fx := start(t, 1)
	c, err := net.Dial("tcp", fx.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n")) // not TLS
	c.Close()
	waitFor(t, "the failure", func() bool {
		fx.mu.Lock()
		defer fx.mu.Unlock()
		return len(fx.failures) > 0
	})
	fx.mu.Lock()
	got := fx.failures[0]
	fx.mu.Unlock()
	if got.Addr != netip.MustParseAddr("127.0.0.1") || got.Reason != kelisten.FailHandshake {
		t.Fatalf("failure %+v (%s), want 127.0.0.1 handshake", got, kelisten.FailureName(got.Reason))
	}
}

// A certificate the helper cannot use is refused with the reason, and the
// helper keeps serving the previous one.
func TestHelperRefusesBadCert(t *testing.T) {
	fx := start(t, 1)
	good := fx.cert.Load()
	other, _ := newCert(t, "mismatched")
	fx.cert.Store(&tls.Certificate{Certificate: good.Certificate, PrivateKey: other.PrivateKey})
	if err := fx.sup.PushCert(); err == nil {
		t.Fatal("a certificate with another's key was taken")
	}
	if cn := fx.exchange(t).TLS.PeerCertificates[0].Subject.CommonName; cn != "first" {
		t.Fatalf("served %q after a refused certificate", cn)
	}
}

// A SIGTERM for the whole cgroup (`systemctl stop`) or ^C for the whole
// process group does not end a helper before its parent says so: no
// spurious exit, no restart, and the parent's stop still ends it.
func TestHelperLeavesStoppingToParent(t *testing.T) {
	fx := start(t, 1)
	pid := helperPIDs(fx)[0]
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
	}
	fx.exchange(t) // served after the signals, by the same helper
	if p := helperPIDs(fx); len(p) != 1 || p[0] != pid || fx.sup.Restarts() != 0 {
		t.Fatalf("helpers %v (was %d), restarts %d", p, pid, fx.sup.Restarts())
	}
	fx.stop()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("helper %d still there after stop (kill 0: %v)", pid, err)
	}
}

// Stopping the Supervisor stops its helpers.
func TestStopEndsHelpers(t *testing.T) {
	fx := start(t, 2)
	pids := helperPIDs(fx)
	fx.stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("helper %d still there after stop (kill 0: %v)", pid, err)
		}
	}
}

// A message a helper should never send ends the reader, which the
// Supervisor answers by starting another helper; nothing of it is
// delivered.
func TestParentRefusesHostileMessages(t *testing.T) {
	for name, msg := range map[string][]byte{
		"unknown type":    {'Z', 1, 2},
		"bad failures":    {msgFailures, 1, 2, 3},
		"unasked replies": {msgAck},
	} {
		t.Run(name, func(t *testing.T) {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			ours, theirs := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
			defer theirs.Close()
			conn, err := net.FileConn(ours)
			ours.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			delivered := 0
			c := &child{conn: conn.(*net.UnixConn), onFailure: func(Failure) { delivered++ },
				replies: make(chan []byte, 1), failed: make(chan struct{})}
			go c.reader()
			send := func(b []byte) {
				if _, err := theirs.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			if name == "unasked replies" {
				send(msg) // fills the one reply slot nobody takes
			}
			send(msg)
			select {
			case <-c.failed:
			case <-time.After(10 * time.Second):
				t.Fatal("reader still running")
			}
			if !errors.Is(c.readErr, errMessage) || delivered != 0 {
				t.Fatalf("readErr %v, %d delivered", c.readErr, delivered)
			}
		})
	}
}

// A parent killed outright takes its helpers with it: the kernel closes
// the control socket, which stops a helper, and PR_SET_PDEATHSIG kills
// one that could not notice.
func TestParentKilled(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	pid := startParent(t, cmd)
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, "the helper to die with its parent", func() bool {
		// Orphaned, the helper is reaped by init (or a subreaper): ESRCH
		// once it is gone.
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || zombie(pid)
	})
}

// startParent starts cmd (this test binary) as a parent of its own
// (testParent) and returns its helper's pid; the caller ends cmd.
func startParent(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	cmd.Env = append(os.Environ(), "KEPROC_TEST_PARENT=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("parent said nothing: %v", err)
	}
	pid, err := strconv.Atoi(line[:len(line)-1])
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("parent said %q", line)
	}
	return pid
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			return i+2 < len(b) && b[i+2] == 'Z'
		}
	}
	return false
}

// testParent runs a Supervisor and prints its helper's pid, for
// TestParentKilled, which then kills this process.
func testParent() int {
	cert, _, err := makeCert("parent")
	if err != nil {
		return 1
	}
	ring, err := nts.NewKeyRing(time.Now(), rand.Reader)
	if err != nil {
		return 1
	}
	f, _, err := makeListener()
	if err != nil {
		return 1
	}
	sup, err := New(Config{Processes: 1, Listeners: []*os.File{f}, Child: ChildConfig{LogLevel: "warn"},
		Cert: func() *tls.Certificate { return cert }, Ring: func() *nts.KeyRing { return ring }})
	if err != nil {
		return 1
	}
	go sup.Run(context.Background())
	<-sup.Ready()
	sup.mu.Lock()
	fmt.Println(sup.live[0].cmd.Process.Pid)
	sup.mu.Unlock()
	select {}
}
