package tests

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"timegate/internal/report"
	"timegate/ntp"
	"timegate/symkey"
	"timegate/tests/harness"
)

// Hostile upstreams: timegate as the client of a fake NTP server on
// loopback that lies in one way each. The fake server signs its replies
// with the AES-CMAC key timegate trusts for it (a compromised or broken
// upstream: under authselectmode require an unsigned one is never
// selected anyway); the off-path attacker, who has no key, does not. Whatever it sends, timegate must
// never serve its forged time: `gatectl status` over the control socket
// must show it unsynchronised (or, where the lie is one a client must
// ignore, synchronised to the honest time), and `gatectl query` must find
// timegate's served time within a second of this machine's clock.

// liar builds the reply to one request; nil sends nothing. spoof, if set,
// is sent first from another port, as an off-path attacker would.
type liar struct {
	name   string
	reply  func(req ntp.Header, now time.Time) []byte
	spoof  func(req ntp.Header, now time.Time) []byte
	synced bool     // timegate synchronises (to the honest part) despite it
	conf   []string // more directives for this timegate
}

// honest is what a stratum-2 server says at now.
func honest(req ntp.Header, now time.Time) ntp.Header {
	return ntp.Header{
		Version: 4, Mode: ntp.ModeServer, Stratum: 2, Poll: req.Poll, Precision: -20,
		RootDelay: ntp.Time32From(time.Millisecond), RootDispersion: ntp.Time32From(time.Millisecond),
		RefID: 0x47505300, RefTime: ntp.Time64From(now.Add(-time.Second)),
		Origin: req.Transmit, Receive: ntp.Time64From(now), Transmit: ntp.Time64From(now),
	}
}

func edit(f func(h *ntp.Header, now time.Time)) func(ntp.Header, time.Time) []byte {
	return func(req ntp.Header, now time.Time) []byte {
		h := honest(req, now)
		f(&h, now)
		return h.Append(nil)
	}
}

func shifted(d time.Duration) func(ntp.Header, time.Time) []byte {
	return edit(func(h *ntp.Header, now time.Time) {
		h.RefTime, h.Receive, h.Transmit = ntp.Time64From(now.Add(d-time.Second)), ntp.Time64From(now.Add(d)), ntp.Time64From(now.Add(d))
	})
}

func kiss(code ntp.KissCode, origin bool) func(ntp.Header, time.Time) []byte {
	return func(req ntp.Header, _ time.Time) []byte {
		h := ntp.KissHeader(&req, code)
		if !origin {
			h.Origin ^= 0x5a5a
		}
		return h.Append(nil)
	}
}

func liars() []liar {
	const year = 365 * 24 * time.Hour
	return []liar{
		{name: "honest (control)", reply: edit(func(*ntp.Header, time.Time) {}), synced: true},
		{name: "forged origin", reply: edit(func(h *ntp.Header, _ time.Time) { h.Origin ^= 1 })},
		{name: "zero origin", reply: edit(func(h *ntp.Header, _ time.Time) { h.Origin = 0 })},
		{name: "off-path replies from another port", spoof: shifted(time.Hour)},
		{name: "off-path DENY kisses, honest server", reply: edit(func(*ntp.Header, time.Time) {}), spoof: kiss(ntp.KissDENY, false), synced: true},
		{name: "off-path RATE kisses, honest server", reply: edit(func(*ntp.Header, time.Time) {}), spoof: kiss(ntp.KissRATE, false), synced: true},
		{name: "off-path honest-looking replies a year ahead, honest server", reply: edit(func(*ntp.Header, time.Time) {}), spoof: shifted(year), synced: true},
		{name: "DENY kiss with the right origin", reply: kiss(ntp.KissDENY, true)},
		{name: "root dispersion 16 s", reply: edit(func(h *ntp.Header, _ time.Time) { h.RootDispersion = ntp.Time32From(16 * time.Second) })},
		{name: "root delay 16 s", reply: edit(func(h *ntp.Header, _ time.Time) { h.RootDelay = ntp.Time32From(16 * time.Second) })},
		{name: "stratum 0, unknown kiss code", reply: edit(func(h *ntp.Header, _ time.Time) { h.Stratum, h.RefID = 0, 0x58585858 })},
		{name: "stratum 16", reply: edit(func(h *ntp.Header, _ time.Time) { h.Stratum = 16 })},
		{name: "leap 3 (alarm)", reply: edit(func(h *ntp.Header, _ time.Time) { h.Leap = ntp.LeapUnsync })},
		{name: "transmit 0", reply: edit(func(h *ntp.Header, _ time.Time) { h.Transmit = 0 })},
		{name: "mode 3 reply", reply: edit(func(h *ntp.Header, _ time.Time) { h.Mode = ntp.ModeClient })},
		{name: "version 5 reply", reply: edit(func(h *ntp.Header, _ time.Time) { h.Version = 5 })},
		// Beyond the panic threshold (1000 s, ntpd's): refused, PANC.
		{name: "30 years in the past", reply: shifted(-30 * year)},
		{name: "100 years in the future", reply: shifted(100 * year)},
		{name: "era 1 (2036+) timestamps", reply: shifted(11 * year)},
		// Campaign finding: a lone keyed upstream 200 s off was followed at
		// start-up. maxstartoffset makes such a step wait for a second
		// source (its default, 0, follows it, as chrony and ntpd do).
		{name: "lone source 200 s ahead at start-up, maxstartoffset 1", reply: shifted(200 * time.Second), conf: []string{"maxstartoffset 1"}},
	}
}

// fakeServer answers on 127.0.0.1 as l says, until the test ends, signing
// its replies (not the spoofs) with key.
func fakeServer(t *testing.T, l liar, key *symkey.Key) int {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	spoofer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); spoofer.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req, err := ntp.DecodeHeader(buf[:n])
			if err != nil {
				continue
			}
			now := time.Now()
			if l.spoof != nil {
				spoofer.WriteToUDP(l.spoof(req, now), from)
			}
			if l.reply != nil {
				r := binary.BigEndian.AppendUint32(l.reply(req, now), key.ID())
				conn.WriteToUDP(key.Sum(r, r[:len(r)-4]), from)
			}
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// upstreamWindow is how long each timegate polls its liar (every 1/16 s
// after an iburst): dozens of replies, more than selection needs.
const upstreamWindow = 3 * time.Second

// maxUpstreamLogLines bounds a hostile upstream's timegate log: start-up
// says about ten lines, each change of state one or two more.
const maxUpstreamLogLines = 25

func TestHostileUpstream(t *testing.T) {
	bins := build.Binaries(t)
	dir := t.TempDir()
	hk := harness.NewKey(t, 1, "AES128")
	keys := harness.WriteKeys(t, dir, hk)
	key := macKey(t, hk, symkey.AES128CMAC)
	ls := liars()
	procs := make([]*harness.Process, len(ls))
	served := make([]int, len(ls))
	// All at once, then one wait: a t.Parallel per liar would run two at
	// a time on a two-core machine.
	for i, l := range ls {
		port := fakeServer(t, l, key)
		procs[i], served[i] = upstreamTimegate(t, append([]string{"minsources 1", "keyfile " + keys, fastServer(port, "key 1")}, l.conf...)...)
	}
	time.Sleep(upstreamWindow)
	for i, l := range ls {
		t.Run(l.name, func(t *testing.T) {
			p := procs[i]
			if l.synced {
				p.WaitLog(t, 0, syncedLine, 10*time.Second)
			}
			out, _, _ := p.Gatectl(t, bins.Gatectl, "status", "-json")
			var st report.Status
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("gatectl status -json: %v\n%s", err, out)
			}
			if st.Synchronised != l.synced {
				t.Errorf("synchronised = %v, want %v (status %+v)", st.Synchronised, l.synced, st)
			}
			if !l.synced && st.Stratum != 16 {
				t.Errorf("serving stratum %d while unsynchronised", st.Stratum)
			}
			if r := gatectlQuery(t, served[i]); math.Abs(r.Offset) > 1 {
				t.Errorf("timegate serves time %v s off this machine's clock: forged time accepted", r.Offset)
			}
			if !p.Running() {
				t.Fatal("timegate died")
			}
			// Dozens of hostile replies, a handful of lines: none per reply
			// (the panic refusals used to log a warning each).
			if n := strings.Count(p.Log(), "\n"); n > maxUpstreamLogLines {
				t.Errorf("%d log lines:\n%s", n, p.Log())
			}
		})
	}
}
