package audit

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"timegate/audit"
	"timegate/audit/relp"
)

// fakeRELP is a minimal imrelp: it answers open, acknowledges syslog
// commands and records the seq of each message. dropAfter, when set, makes
// it cut the first connection after that many messages without
// acknowledging the last of them (a crash mid-window).
type fakeRELP struct {
	ln        net.Listener
	mu        sync.Mutex
	seqs      []uint64
	dropAfter int
	conns     int
	open      []net.Conn
	down      atomic.Bool // connections are closed at once (an outage)
}

// cut closes every connection the collector has open.
func (f *fakeRELP) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.open {
		c.Close()
	}
	f.open = nil
}

func startFakeRELP(t *testing.T, dropAfter int) *fakeRELP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRELP{ln: ln, dropAfter: dropAfter}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if f.down.Load() {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns++
			first := f.conns == 1
			f.open = append(f.open, c)
			f.mu.Unlock()
			go f.serve(c, first)
		}
	}()
	return f
}

func (f *fakeRELP) serve(c net.Conn, first bool) {
	defer c.Close()
	seqRE := regexp.MustCompile(`seq="(\d+)"`)
	var buf []byte
	tmp := make([]byte, 64<<10)
	n := 0
	for {
		fr, used, err := relp.Parse(buf)
		if err != nil {
			m, rerr := c.Read(tmp)
			if rerr != nil {
				return
			}
			buf = append(buf, tmp[:m]...)
			continue
		}
		data := append([]byte(nil), fr.Data...)
		buf = buf[used:]
		switch fr.Command {
		case "open":
			c.Write(relp.Append(nil, relp.Frame{Txnr: fr.Txnr, Command: "rsp", Data: []byte("200 OK\nrelp_version=0\ncommands=syslog")}))
		case "syslog":
			n++
			if first && f.dropAfter > 0 && n > f.dropAfter {
				return // taken but never acknowledged: must be re-sent
			}
			if m := seqRE.FindSubmatch(data); m != nil {
				s, _ := strconv.ParseUint(string(m[1]), 10, 64)
				f.mu.Lock()
				f.seqs = append(f.seqs, s)
				f.mu.Unlock()
			}
			c.Write(relp.Append(nil, relp.Frame{Txnr: fr.Txnr, Command: "rsp", Data: []byte("200 OK")}))
		case "close":
			c.Write(relp.Append(nil, relp.Frame{Txnr: fr.Txnr, Command: "rsp"}))
			return
		}
	}
}

func (f *fakeRELP) got() map[uint64]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[uint64]int{}
	for _, s := range f.seqs {
		m[s]++
	}
	return m
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func runShipper(t *testing.T, cfg ShipConfig, w *Writer) (*Shipper, func()) {
	t.Helper()
	sh, err := NewShipper(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sh.Run(ctx); close(done) }()
	return sh, func() { cancel(); <-done }
}

// TestShipperAtLeastOnce: a collector that takes messages and dies without
// acknowledging them gets them again; after a restart of the shipper only
// what was not acknowledged is sent; the cursor is durable.
func TestShipperAtLeastOnce(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(stopEv)
	col := startFakeRELP(t, 50)
	cfg := ShipConfig{Transport: "relp", Addr: col.ln.Addr().String(), Cursor: path + ".shipped", Log: zaptest.NewLogger(t)}
	sh, stop := runShipper(t, cfg, w)
	for i := range 300 {
		w.Record(ev(i))
	}
	waitUntil(t, 20*time.Second, func() bool { return w.Seq() > 300 && sh.Status().AckedSeq == w.Seq() })
	stop()
	got := col.got()
	for seq := uint64(1); seq <= w.Seq(); seq++ {
		if got[seq] == 0 {
			t.Fatalf("seq %d never acknowledged", seq)
		}
	}
	c, err := loadCursor(cfg.Cursor)
	if err != nil || c.Seq != w.Seq() {
		t.Fatalf("cursor %+v %v, want seq %d", c, err, w.Seq())
	}
	// A new shipper (a restarted gateway) resumes after the cursor.
	before, last := len(col.got()), w.Seq()
	for i := range 10 {
		w.Record(ev(1000 + i))
	}
	waitUntil(t, 5*time.Second, func() bool { return w.Seq() >= last+10 })
	sh, stop = runShipper(t, cfg, w)
	waitUntil(t, 10*time.Second, func() bool { return sh.Status().AckedSeq == w.Seq() })
	stop()
	after := col.got()
	if len(after) != before+10 {
		t.Fatalf("after resume: %d distinct, want %d", len(after), before+10)
	}
	for seq := uint64(1); seq <= c.Seq; seq++ {
		if after[seq] != got[seq] {
			t.Fatalf("seq %d, acknowledged before the restart, was sent again", seq)
		}
	}
}

// TestShipperOverflow: with the collector unreachable, a backlog past the
// limit raises the alarm, and drop-oldest gives up the oldest records
// (recorded in the log, which is shipped); keep only alarms.
func TestShipperOverflow(t *testing.T) {
	for _, policy := range []string{OverflowDropOldest, OverflowKeep} {
		s := testKey(t, audit.Ed25519)
		path := filepath.Join(t.TempDir(), "audit.log")
		w, err := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true}, startEv)
		if err != nil {
			t.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close() // nothing listens: every dial is refused
		sh, stop := runShipper(t, ShipConfig{Transport: "relp", Addr: addr, Cursor: path + ".shipped",
			SpoolMax: 8 << 10, Overflow: policy, Rec: w, Log: zaptest.NewLogger(t)}, w)
		for i := range 200 {
			w.Record(ev(i))
		}
		waitUntil(t, 10*time.Second, func() bool {
			st := sh.Status()
			return st.Alarm && (policy == OverflowKeep || st.Skipped > 0)
		})
		stop()
		st := sh.Status()
		w.Close(stopEv)
		data, _ := os.ReadFile(path)
		if !bytes.Contains(data, []byte(`"type":"audit.ship.alarm"`)) {
			t.Errorf("%s: no alarm record", policy)
		}
		if hasOverflow := bytes.Contains(data, []byte(`"type":"audit.ship.overflow"`)); hasOverflow != (policy == OverflowDropOldest) {
			t.Errorf("%s: overflow record %v", policy, hasOverflow)
		}
		// What status and metrics show of an unreachable collector.
		if st.Connected || st.Reconnects == 0 || st.LastError == "" || st.SpoolMax != 8<<10 {
			t.Errorf("%s: status %+v, want disconnected, reconnecting, the dial error and the limit", policy, st)
		}
		if policy == OverflowDropOldest && (st.AckedSeq == 0 || st.BacklogBytes > 8<<10+int64(audit.MaxLineLen)) {
			t.Errorf("%s: %+v", policy, st)
		}
		verifyFile(t, path, s) // the local file keeps everything
	}
}

// TestShipStatusSince: Since is when shipping started until the first
// connection, whatever the failed attempts; then when the connection came
// up; then when it went down.
func TestShipStatusSince(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, err := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true}, startEv)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(stopEv)
	f := startFakeRELP(t, 0)
	f.down.Store(true)
	var clock atomic.Int64
	clock.Store(1000)
	sh, stop := runShipper(t, ShipConfig{Transport: "relp", Addr: f.ln.Addr().String(), Cursor: path + ".shipped",
		Rec: w, Log: zaptest.NewLogger(t), Now: func() time.Time { return time.Unix(clock.Load(), 0) }}, w)
	defer stop()
	waitUntil(t, 10*time.Second, func() bool { return sh.Status().Reconnects >= 1 })
	clock.Store(1500)
	if st := sh.Status(); st.Connected || st.Since.Unix() != 1000 {
		t.Fatalf("never connected: %+v, want since the start (1000)", st)
	}
	clock.Store(2000)
	f.down.Store(false)
	waitUntil(t, 20*time.Second, func() bool { return sh.Status().Connected })
	clock.Store(2500)
	if st := sh.Status(); st.Since.Unix() != 2000 {
		t.Fatalf("connected: since %d, want 2000", st.Since.Unix())
	}
	clock.Store(3000)
	f.down.Store(true)
	f.cut()
	waitUntil(t, 10*time.Second, func() bool { return !sh.Status().Connected })
	clock.Store(3500)
	if st := sh.Status(); st.Since.Unix() != 3000 {
		t.Fatalf("disconnected: since %d, want 3000", st.Since.Unix())
	}
}

// TestCursorMismatch: a cursor that does not match the file (the log was
// replaced) is not trusted: shipping starts over, never skips.
func TestCursorMismatch(t *testing.T) {
	s := testKey(t, audit.Ed25519)
	path := filepath.Join(t.TempDir(), "audit.log")
	w, _ := OpenWriter(WriterConfig{Path: path, Signer: s, NoSync: true}, startEv)
	for i := range 20 {
		w.Record(ev(i))
	}
	w.Close(stopEv)
	data, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(data, []byte("\n"))
	off := int64(len(bytes.Join(lines[:5], nil)))
	good := Cursor{Seq: 5, Offset: off, Hash: audit.HashLine(bytes.TrimSuffix(lines[4], []byte("\n")))}
	f, _ := os.Open(path)
	defer f.Close()
	if got, ok := checkCursor(f, good); !ok || got != good {
		t.Fatalf("good cursor refused: %+v", got)
	}
	other := good
	other.Hash[0] ^= 1
	for _, c := range []Cursor{other, {Seq: 5, Offset: off + 3, Hash: good.Hash}, {Seq: 5, Offset: 1 << 40, Hash: good.Hash},
		{Seq: 5, Hash: good.Hash}, {Seq: 6, Offset: off, Hash: good.Hash}} {
		if got, ok := checkCursor(f, c); ok || got != (Cursor{}) {
			t.Errorf("%+v → %+v %v, want a restart from 0", c, got, ok)
		}
	}
	p := filepath.Join(t.TempDir(), "c")
	if err := saveCursor(p, good); err != nil {
		t.Fatal(err)
	}
	if c, err := loadCursor(p); err != nil || c != good {
		t.Fatalf("%+v %v", c, err)
	}
	os.WriteFile(p, []byte("timegate-audit-cursor v1 5 x y\n"), 0o600)
	if _, err := loadCursor(p); err == nil {
		t.Fatal("malformed cursor accepted")
	}
}
