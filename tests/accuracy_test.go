//go:build accuracy

// The accuracy harness (issue 14): `make accuracy`, or
//
//	go test -tags accuracy -run TestAccuracy -v -count=1 -timeout 30m ./tests/
//
// Three NTS upstreams serve true time + accShift (chained chronyds with `offset`:
// harness.ChronyOptions.Shift); timegate and a `chronyd -x` client of the same three
// start together; a probe then asks each of the five, the same way, what time it
// serves. Every machine-dependent figure goes to the log and, with ACCURACY_OUT=FILE,
// to a Markdown report; the test itself checks only behaviour (everyone synchronised,
// the served time follows the shifted upstreams). It runs on loopback and between two
// network namespaces with 1 ms of delay each way (tc netem on a veth pair, or where the
// kernel has no netem a userspace delay line: vethTopology), which it creates and removes.
package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"timegate/tests/harness"
)

const (
	// accShift is how far the upstreams are from the machine's clock: far enough that
	// the first synchronisation steps, as in the report of a +9.5 ms swing.
	accShift = 0.5
	// accProbes is how many probes make one figure (their median).
	accProbes = 9
	// accDelay is added each way on the veth topology (netem, or the delay line).
	accDelay = time.Millisecond
	// accIdle is how long the probe waits before each exchange of a figure, so that
	// every server is asked from the same state (see probeMedians).
	accIdle = 2 * time.Millisecond
	// accProbeSlack: a first-minute probe exchange whose round trip exceeds the least
	// seen by more than this is left out, since its own error may reach half the excess.
	accProbeSlack = 40e-6
	// accLie is how much further than the others the liar of ACCURACY_LIAR=1 serves.
	accLie = 3.0
	// accNoLiar names the second timegate of ACCURACY_LIAR=1, which has only the honest
	// upstreams: the served time the liar must not move.
	accNoLiar = "timegate without the liar"
)

// accTopology is where the upstreams and the clients under test run.
type accTopology struct {
	name string
	// down is the namespace of timegate, the chronyd client and the probe ("" = this one).
	down string
	// up is the upstreams' namespace; hosts are the upstreams' addresses seen from down:
	// three honest ones, then one for the liar of ACCURACY_LIAR=1.
	up    string
	hosts []string
	// allow is the network the upstreams must answer.
	allow string
}

func TestAccuracy(t *testing.T) {
	harness.RequireRoot(t, "chronyd and network namespaces")
	runs, _ := strconv.Atoi(os.Getenv("ACCURACY_RUNS"))
	runs = max(runs, 1)
	topos := []string{"loopback", "veth"}
	if s := os.Getenv("ACCURACY_TOPOLOGIES"); s != "" {
		topos = strings.Split(s, ",")
	}
	var report strings.Builder
	fmt.Fprintf(&report, "accuracy run %s, shift %+.3f s, median of %d probes per figure, %d run(s)\n\n",
		time.Now().UTC().Format(time.RFC3339), accShift, accProbes, runs)
	for _, topo := range topos {
		for run := 1; run <= runs; run++ {
			t.Run(fmt.Sprintf("%s-%d", topo, run), func(t *testing.T) {
				var tp accTopology
				switch topo {
				case "loopback":
					tp = accTopology{name: "loopback", hosts: []string{"127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"}, allow: "127.0.0.0/8"}
				case "veth":
					tp = vethTopology(t)
				default:
					t.Fatalf("unknown topology %q", topo)
				}
				accuracyRun(t, tp, run, &report)
			})
		}
	}
	t.Logf("\n%s", report.String())
	if out := os.Getenv("ACCURACY_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// vethTopology joins the upstreams' namespace and the clients' namespace with 1 ms of
// added delay each way: a veth pair with tc netem on both ends where the kernel has
// sch_netem, else (a kernel without it, like the one the harness was first run on) a
// userspace delay line between two veth pairs (harness.StartDelayLine, tests/delayline).
// The upstreams listen on 10.77.0.3-5; the clients are 10.77.0.2 (netem) or 10.77.1.2.
// Not the same path for kernel stamps: netem holds a packet in its sender's queue,
// before the driver takes the software transmit stamp that timegate and chronyd use
// as T1 (and as an interleaved T3), the line after it. The netem branch has not been
// run since the harness took kernel transmit stamps (this project's kernel has no
// sch_netem); expect its clients to see the delay on one leg only.
func vethTopology(t *testing.T) accTopology {
	ip := harness.RequireBinary(t, "ip")
	tc := harness.RequireBinary(t, "tc")
	hosts := []string{"10.77.0.3", "10.77.0.4", "10.77.0.5", "10.77.0.6"}
	if why := netemMissing(t, ip, tc); why != "" {
		t.Logf("no tc netem (%s): using the userspace delay line", why)
		b := harness.NewBuild("", "./tests/delayline")
		t.Cleanup(func() { b.Close() })
		// SCHED_FIFO: the line's threads wake on time on a busy machine; they spin
		// at most 100 µs per packet, and the harness's packets are few.
		dl := harness.StartDelayLine(t, b.Path(t, "delayline"), harness.DelayLineOptions{
			Delay: accDelay, UpAddrs: hosts, RTPrio: 10})
		t.Cleanup(func() { t.Logf("delay line counters: %+v", dl.Stats(t)) })
		return accTopology{name: fmt.Sprintf("veth + userspace delay line %g ms each way", accDelay.Seconds()*1e3),
			down: dl.Down, up: dl.Up, hosts: hosts, allow: harness.DelayLineNet}
	}
	id := strconv.Itoa(os.Getpid() % 100000)
	up, down := "tgacc-up-"+id, "tgacc-dn-"+id
	va, vb := "tgau"+id, "tgad"+id
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run(ip, "netns", "add", up)
	t.Cleanup(func() { exec.Command(ip, "netns", "del", up).Run() })
	run(ip, "netns", "add", down)
	t.Cleanup(func() { exec.Command(ip, "netns", "del", down).Run() })
	run(ip, "link", "add", va, "type", "veth", "peer", "name", vb)
	run(ip, "link", "set", va, "netns", up)
	run(ip, "link", "set", vb, "netns", down)
	for _, c := range [][]string{
		{"-n", up, "link", "set", "lo", "up"},
		{"-n", down, "link", "set", "lo", "up"},
		{"-n", up, "addr", "add", "10.77.0.1/24", "dev", va},
		{"-n", up, "addr", "add", "10.77.0.3/24", "dev", va},
		{"-n", up, "addr", "add", "10.77.0.4/24", "dev", va},
		{"-n", up, "addr", "add", "10.77.0.5/24", "dev", va},
		{"-n", up, "addr", "add", "10.77.0.6/24", "dev", va},
		{"-n", down, "addr", "add", "10.77.0.2/24", "dev", vb},
		{"-n", up, "link", "set", va, "up"},
		{"-n", down, "link", "set", vb, "up"},
	} {
		run(ip, c...)
	}
	for _, c := range [][]string{{up, va}, {down, vb}} {
		run(ip, "netns", "exec", c[0], tc, "qdisc", "add", "dev", c[1], "root", "netem", "delay", accDelay.String())
	}
	return accTopology{name: fmt.Sprintf("veth + tc netem %g ms each way", accDelay.Seconds()*1e3), down: down, up: up,
		hosts: hosts, allow: "10.77.0.0/24"}
}

// netemMissing tries a netem qdisc on the loopback device of a throwaway namespace and
// returns tc's complaint when the kernel has no sch_netem ("" when it has).
func netemMissing(t *testing.T, ip, tc string) string {
	ns := "tgacc-netem-" + strconv.Itoa(os.Getpid()%100000)
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	defer exec.Command(ip, "netns", "del", ns).Run()
	out, err := exec.Command(ip, "netns", "exec", ns, tc, "qdisc", "add", "dev", "lo", "root", "netem", "delay", accDelay.String()).CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out)) + ": " + err.Error()
	}
	return ""
}

// accTarget is one server the probe asks.
type accTarget struct {
	name string
	addr string
}

func accuracyRun(t *testing.T, tp accTopology, run int, report *strings.Builder) {
	dir := t.TempDir()
	ips := []string{"127.0.0.1"}
	ips = append(ips, tp.hosts...)
	cert, key := harness.WriteCertWith(t, dir, harness.CertOptions{IPs: parseIPs(ips)})
	var ups []*harness.Chrony
	var tgLines []string
	var chronyLines []harness.ServerLine
	var targets []accTarget
	// ACCURACY_XLEAVE=1 asks every upstream for interleaved mode, from timegate and from
	// the chronyd client alike: the upstreams' replies then carry the kernel's transmit
	// time of the previous reply instead of a clock read before the NTS seal and the send.
	var xleave []string
	xleaveOpt := ""
	if os.Getenv("ACCURACY_XLEAVE") == "1" {
		xleave, xleaveOpt = []string{"xleave"}, " xleave"
	}
	// ACCURACY_LIAR=1 adds a fourth upstream, accLie further than the others, to
	// timegate and the chronyd client, and starts a second timegate of the three honest
	// ones beside them: the difference between the two timegates is what the liar moved.
	liar := os.Getenv("ACCURACY_LIAR") == "1"
	hosts := tp.hosts[:3]
	if liar {
		hosts = tp.hosts
	}
	for i, host := range hosts {
		name, shift := fmt.Sprintf("upstream-%d", i+1), accShift
		if i == 3 {
			name, shift = "liar", accShift+accLie
		}
		u := harness.StartChrony(t, harness.ChronyOptions{
			Name: name, LocalStratum: 2, Shift: shift, Netns: tp.up,
			NTSServerCert: cert, NTSServerKey: key,
			ExtraConfig: []string{"bindaddress " + host, "allow " + tp.allow},
		})
		ups = append(ups, u)
		tgLines = append(tgLines, fmt.Sprintf("server %s nts ntsport %d iburst minpoll -4 maxpoll -4%s", host, u.NTSPort, xleaveOpt))
		chronyLines = append(chronyLines, harness.ServerLine{Host: host, NTS: true, NTSPort: u.NTSPort, Options: xleave})
		if i < 3 {
			targets = append(targets, accTarget{name: name, addr: fmt.Sprintf("%s:%d", host, u.Port)})
		}
	}

	// timegate and the chronyd client start together.
	bins := build.Binaries(t)
	startTimegate := func(lines []string) (*harness.Process, string) {
		port := harness.FreeUDPPort(t)
		// ACCURACY_TG_CONF: more lines for timegate's configuration (\n-separated).
		conf := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nratelimit off\nntstrustedcerts %s\nnosystemcert\n%s\n%s\n",
			port, cert, strings.Join(lines, "\n"), strings.ReplaceAll(os.Getenv("ACCURACY_TG_CONF"), `\n`, "\n"))
		// ACCURACY_TG_ENV: more environment for timegate (NAME=value, space-separated).
		tg := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", t.TempDir()}, Netns: tp.down,
			Env: strings.Fields(os.Getenv("ACCURACY_TG_ENV"))})
		return tg, fmt.Sprintf("127.0.0.1:%d", port)
	}
	tg, tgAddr := startTimegate(tgLines)
	var honestAddr string
	if liar {
		_, honestAddr = startTimegate(tgLines[:3])
	}
	start := time.Now()
	// ACCURACY_CLIENT_CONF: more lines for the chronyd client's configuration (\n-separated),
	// e.g. "logdir D\nlog measurements statistics tracking" beside ACCURACY_TG_CONF's.
	var cliExtra []string
	if x := os.Getenv("ACCURACY_CLIENT_CONF"); x != "" {
		cliExtra = strings.Split(strings.ReplaceAll(x, `\n`, "\n"), "\n")
	}
	cli := harness.StartChrony(t, harness.ChronyOptions{Name: "chronyd client", Servers: chronyLines, Serve: true,
		TrustedCert: cert, Netns: tp.down, ExtraConfig: cliExtra})
	targets = append(targets,
		accTarget{name: "timegate", addr: tgAddr},
		accTarget{name: "chronyd -x", addr: cli.Addr()})
	if liar {
		targets = append(targets, accTarget{name: accNoLiar, addr: honestAddr})
	}

	p := newProbe(t, tp.down)
	defer p.Close()

	// Phase 1: the first minute, from start: the largest excursion after first sync.
	exc, moved := followFirstSync(t, p, targets[3:], start, 60*time.Second)

	// Phase 2: steady state, figures of accProbes probes each, with the stages.
	const points = 12
	errs := make([][]float64, len(targets))
	errsK := make([][]float64, len(targets))
	var stages accStages
	for range points {
		time.Sleep(2 * time.Second)
		user, kernel, sendPath := probeMedians(t, p, targets, accProbes)
		stages.sendPath = append(stages.sendPath, sendPath)
		for i := range targets {
			errs[i] = append(errs[i], user[i]-accShift)
			errsK[i] = append(errsK[i], kernel[i]-accShift)
		}
		stages.add(t, tg, bins.Gatectl, cli, ups)
	}
	checkAccuracyBehaviour(t, targets, errs)
	writeAccuracyReport(report, tp, run, targets, errs, errsK, exc, &stages)
	if liar {
		writeLiarReport(report, errs, moved)
	}
}

func parseIPs(s []string) []net.IP {
	out := []net.IP{net.IPv6loopback}
	for _, a := range s {
		out = append(out, net.ParseIP(a))
	}
	return out
}

// followFirstSync probes the clients under test every 100 ms from start for d and
// returns, for each, the largest |served − shift| seen after its first synchronised
// answer, and when. Exchanges whose round trip exceeds the least seen by more than
// accProbeSlack are left out: the probe itself was held up (the machine is shared), and
// its offset may then be off by half the excess, which is not the server's error.
// When the last target is accNoLiar, it also returns how far the first target's served
// time was from that one's, exchange by exchange in the same round.
func followFirstSync(t *testing.T, p *probe, targets []accTarget, start time.Time, d time.Duration) ([]accExcursion, liarMove) {
	type point struct {
		at    time.Duration
		r     probeReply
		round int
		slow  bool
	}
	pts := make([][]point, len(targets))
	for round := 0; time.Since(start) < d; round++ {
		time.Sleep(100 * time.Millisecond)
		p.warm(targets[0].addr)
		for k := range targets {
			i := (round + k) % len(targets)
			tg := targets[i]
			r, err := p.exchange(tg.addr)
			if err != nil || r.stratum == 0 || r.stratum >= 16 || r.leap == 3 {
				continue
			}
			pts[i] = append(pts[i], point{at: time.Since(start), r: r, round: round})
		}
	}
	out := make([]accExcursion, len(targets))
	for i := range out {
		e := &out[i]
		e.firstSync = -1
		if len(pts[i]) == 0 {
			t.Errorf("%s never served synchronised time in %v", targets[i].name, d)
			continue
		}
		e.firstSync = pts[i][0].at
		least := math.Inf(1)
		for _, p := range pts[i] {
			least = min(least, p.r.delay)
		}
		for k := range pts[i] {
			p := &pts[i][k]
			if p.r.delay > least+accProbeSlack {
				p.slow = true
				e.slow++
				t.Logf("%s at %.2f s: slow exchange: delay %.1f µs, out %+.1f µs, back %+.1f µs (legs less the shift)", targets[i].name,
					p.at.Seconds(), p.r.delay*1e6, (p.r.out-accShift)*1e6, (p.r.back+accShift)*1e6)
				continue
			}
			dev := math.Abs(p.r.offset - accShift)
			if dev > 50e-6 {
				t.Logf("%s at %.2f s: served − shift %+.1f µs, probe delay %.1f µs", targets[i].name, p.at.Seconds(), (p.r.offset-accShift)*1e6, p.r.delay*1e6)
			}
			if dev > e.max {
				e.max, e.at = dev, p.at
			}
		}
	}
	var mv liarMove
	if n := len(targets); n >= 2 && targets[n-1].name == accNoLiar {
		honest := map[int]float64{}
		for _, p := range pts[n-1] {
			if !p.slow {
				honest[p.round] = p.r.offset
			}
		}
		var diffs []float64
		for _, p := range pts[0] {
			if h, ok := honest[p.round]; ok && !p.slow {
				d := p.r.offset - h
				diffs = append(diffs, d)
				if math.Abs(d) > math.Abs(mv.max) {
					mv.max, mv.at = d, p.at
				}
			}
		}
		mv.pairs, mv.medianAbs = len(diffs), absMedian(diffs)
	}
	return out, mv
}

// liarMove compares timegate with the liar to timegate without it, exchange by exchange.
type liarMove struct {
	pairs     int
	max       float64 // the largest difference (signed), and when
	at        time.Duration
	medianAbs float64
}

// writeLiarReport: how far the liar moved timegate's served time, in the first minute
// (single exchanges, paired by round) and in the steady state (the figures).
func writeLiarReport(b *strings.Builder, errs [][]float64, mv liarMove) {
	fmt.Fprintf(b, "A +%g s liar among four (ACCURACY_LIAR=1): timegate with it minus %s, µs:\n\n", accLie, accNoLiar)
	fmt.Fprintf(b, "| phase | pairs | median \\|difference\\| | largest difference | at |\n|---|---|---|---|---|\n")
	fmt.Fprintf(b, "| first minute, single exchanges of one round | %d | %.1f | %s | %.1f s |\n", mv.pairs, mv.medianAbs*1e6, us(mv.max), mv.at.Seconds())
	var d []float64
	largest := 0.0
	for k := range min(len(errs[3]), len(errs[5])) {
		v := errs[3][k] - errs[5][k]
		d = append(d, v)
		if math.Abs(v) > math.Abs(largest) {
			largest = v
		}
	}
	fmt.Fprintf(b, "| steady state, figures (median of %d probes) | %d | %.1f | %s | |\n\n", accProbes, len(d), absMedian(d)*1e6, us(largest))
}

type accExcursion struct {
	firstSync, at time.Duration
	max           float64
	slow          int // exchanges left out for their delay
}

// probeMedians asks every target n times, round-robin so that all see the same
// moments, and returns each target's median offset with the probe's T1 and with the
// kernel's (NaN where no exchange had a kernel stamp). Every exchange comes after the
// probe has been idle for accIdle. Without that, what came before an exchange decided
// how it was served: over the veth topology an exchange with an upstream takes 2 ms,
// the CPUs go idle meanwhile, and the next exchange (always timegate's, the order
// being upstreams, timegate, chronyd, rotated) ran on cold CPUs, the probe's send
// path 10-13 µs instead of 1.5-6 and the server's reply slower too, while the chronyd
// client was always asked right after timegate's fast loopback exchange. Each round
// also starts with a throwaway exchange at another target, as the first exchange after
// a longer pause is slower still.
func probeMedians(t *testing.T, p *probe, targets []accTarget, n int) (user, kernel, sendPath []float64) {
	offs := make([][]float64, len(targets))
	offsK := make([][]float64, len(targets))
	paths := make([][]float64, len(targets))
	for round := range n {
		p.warm(targets[0].addr)
		for k := range targets {
			i := (round + k) % len(targets)
			tg := targets[i]
			time.Sleep(accIdle)
			r, err := p.exchange(tg.addr)
			if err != nil {
				t.Logf("probe %s: %v", tg.name, err)
				continue
			}
			offs[i] = append(offs[i], r.offset)
			if r.okK {
				offsK[i] = append(offsK[i], r.offsetK)
				paths[i] = append(paths[i], r.sendPath)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	user, kernel, sendPath = make([]float64, len(targets)), make([]float64, len(targets)), make([]float64, len(targets))
	for i := range offs {
		user[i], kernel[i], sendPath[i] = median(offs[i]), median(offsK[i]), median(paths[i])
	}
	return user, kernel, sendPath
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// checkAccuracyBehaviour: everyone answered, and timegate and the chronyd client serve
// the upstreams' shifted time (to within a millisecond: a behaviour, not a figure).
func checkAccuracyBehaviour(t *testing.T, targets []accTarget, errs [][]float64) {
	for i, tg := range targets {
		m := median(errs[i])
		if math.IsNaN(m) || math.Abs(m) > 0.001 {
			t.Errorf("%s serves %+.6f s from the shifted time", tg.name, m)
		}
	}
}

// accStages collects the per-stage figures: each a list of (value − shift) samples.
type accStages struct {
	rawSample, filter, estimate, softClock []float64
	chronySources, chronyUpstream          []float64
	// upstreamClock is each upstream's own clock at each reading: `chronyc tracking`
	// System time less the shift, as for the chronyd client.
	upstreamClock []float64
	// sendPath holds, for each figure, each target's median of the probe's own send
	// path (the kernel's T1 less the probe's), in seconds.
	sendPath [][]float64
	// lead is timegate's transmit lead for basic replies at each reading, µs,
	// and leadLag, leadCost what it was made of.
	lead, leadLag, leadCost []float64
	// chronyClock is the chronyd client's own clock: `chronyc tracking` "System time",
	// the correction its -x clock applies to the system clock (served − system).
	chronyClock []float64
	// modes and states count timegate's sources by exchange mode and by state over
	// every reading.
	modes, states map[string]int
}

type tgStatus struct {
	Offset         float64 `json:"offset_s"`
	EstimateOffset float64 `json:"estimate_offset_s"`
	FrequencyPPM   float64 `json:"frequency_ppm"`
}

type tgSource struct {
	Offset     float64 `json:"offset_s"`
	LastOffset float64 `json:"last_offset_s"`
	State      string  `json:"state"`
	Mode       string  `json:"mode"`
}

func (s *accStages) add(t *testing.T, tg *harness.Process, gatectl string, cli *harness.Chrony, ups []*harness.Chrony) {
	var st tgStatus
	var srcs []tgSource
	if gatectlJSON(t, gatectl, tg.ControlSocket, &st, "status", "-json") {
		s.softClock = append(s.softClock, st.Offset-accShift)
		s.estimate = append(s.estimate, st.EstimateOffset-accShift)
	}
	var ss struct {
		NTP struct {
			TxLeadNS     int64 `json:"tx_lead_ns"`
			TxLeadLagNS  int64 `json:"tx_lead_lag_ns"`
			TxLeadCostNS int64 `json:"tx_lead_cost_ns"`
		} `json:"ntp"`
	}
	if gatectlJSON(t, gatectl, tg.ControlSocket, &ss, "serverstats", "-json") {
		s.lead = append(s.lead, float64(ss.NTP.TxLeadNS)/1e3)
		s.leadLag = append(s.leadLag, float64(ss.NTP.TxLeadLagNS)/1e3)
		s.leadCost = append(s.leadCost, float64(ss.NTP.TxLeadCostNS)/1e3)
	}
	if gatectlJSON(t, gatectl, tg.ControlSocket, &srcs, "sources", "-json") {
		if s.modes == nil {
			s.modes, s.states = map[string]int{}, map[string]int{}
		}
		for _, r := range srcs {
			s.modes[r.Mode]++
			s.states[r.State]++
			if r.State == "falseticker" {
				continue // the liar's +3 s is no stage of the served time's error
			}
			s.rawSample = append(s.rawSample, r.LastOffset-accShift)
			s.filter = append(s.filter, r.Offset-accShift)
		}
	}
	// chronyc sources: "Last sample" is the source's offset from chronyd's own, already
	// corrected, clock (positive: chronyd ahead), so it is the analogue of timegate's
	// sample minus its soft clock.
	for _, r := range cli.Sources(t) {
		if math.Abs(r.AdjustedOffset) < accLie/2 { // not ACCURACY_LIAR's liar
			s.chronySources = append(s.chronySources, r.AdjustedOffset)
		}
	}
	s.chronyClock = append(s.chronyClock, cli.Tracking(t).SystemTime-accShift)
	// The upstreams' own tracking of their reference: how far they are from shift.
	for i, u := range ups {
		tr := u.Tracking(t)
		s.chronyUpstream = append(s.chronyUpstream, tr.LastOffset)
		if i < 3 { // not ACCURACY_LIAR's liar, whose clock is accLie off by design
			s.upstreamClock = append(s.upstreamClock, tr.SystemTime-accShift)
		}
	}
}

func gatectlJSON(t *testing.T, bin, socket string, v any, args ...string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-socket", socket}, args...)...).Output()
	if err == nil {
		err = json.Unmarshal(out, v)
	}
	if err != nil {
		t.Errorf("gatectl %v: %v\n%s", args, err, out)
		return false
	}
	return true
}

// errorTable writes one table of served-time errors (each row from one target's
// figures) and returns the upstreams' medians.
func errorTable(b *strings.Builder, what string, targets []accTarget, errs [][]float64) (upMed []float64) {
	fmt.Fprintf(b, "Served-time error with %s:\n\n", what)
	fmt.Fprintf(b, "| server | median error (µs) | median \\|error\\| (µs) | vs upstreams' median (µs) | figures |\n|---|---|---|---|---|\n")
	for i := range 3 {
		upMed = append(upMed, median(errs[i]))
	}
	ref := median(upMed)
	for i, tg := range targets {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %d |\n", tg.name, us(median(errs[i])), us(absMedian(errs[i])),
			us(median(errs[i])-ref), len(errs[i]))
	}
	fmt.Fprintln(b)
	return upMed
}

func us(v float64) string { return fmt.Sprintf("%+.1f", v*1e6) }

// absMedian is the median of |v|.
func absMedian(v []float64) float64 {
	a := make([]float64, len(v))
	for i, x := range v {
		a[i] = math.Abs(x)
	}
	return median(a)
}

func writeAccuracyReport(b *strings.Builder, tp accTopology, run int, targets []accTarget, errs, errsK [][]float64,
	exc []accExcursion, st *accStages) {
	fmt.Fprintf(b, "### %s, run %d\n\n", tp.name, run)
	upMed := errorTable(b, "the probe's T1, read before the send", targets, errs)
	errorTable(b, "the kernel's T1, as a chronyd client takes it", targets, errsK)
	fmt.Fprintf(b, "\nFirst minute after start (probe every 100 ms, single exchanges; those with a round trip over %.0f µs above the least left out):\n\n| server | first synchronised answer | largest \\|served − shift\\| after it | at | left out |\n|---|---|---|---|---|\n", accProbeSlack*1e6)
	for i, e := range exc {
		fmt.Fprintf(b, "| %s | %.1f s | %.1f µs | %.1f s | %d |\n", targets[3+i].name, e.firstSync.Seconds(), e.max*1e6, e.at.Seconds(), e.slow)
	}
	fmt.Fprintf(b, "\nThe probe's own send path (its T1 to the kernel's), median over the figures, µs:")
	for i, tg := range targets {
		var v []float64
		for _, f := range st.sendPath {
			v = append(v, f[i])
		}
		fmt.Fprintf(b, " %s %.1f;", tg.name, median(v)*1e6)
	}
	fmt.Fprintln(b)
	fmt.Fprintf(b, "\ntimegate's sources over every reading, by exchange mode: %v; by state: %v (falsetickers are left out of the budget); transmit lead of basic replies at each reading, µs: %.2f (lag %.2f, less stamp cost %.2f)\n", st.modes, st.states, st.lead, st.leadLag, st.leadCost)
	fmt.Fprintf(b, "\ntimegate's error budget (value − shift; median, and median of |·| in brackets, µs):\n\n")
	fmt.Fprintf(b, "| stage | median | \\|median\\| |\n|---|---|---|\n")
	row := func(name string, v []float64) {
		fmt.Fprintf(b, "| %s | %s | %s |\n", name, us(median(v)), us(absMedian(v)))
	}
	row("upstreams served (probe)", upMed)
	row("upstreams' clocks (chronyc tracking System time)", st.upstreamClock)
	row("upstreams' own last offset to their reference (chronyc tracking)", st.chronyUpstream)
	row("raw samples (last sample per source, T1..T4)", st.rawSample)
	row("clock filter output per source", st.filter)
	row("selection + combining (estimate)", st.estimate)
	row("soft clock (served − system, from the law)", st.softClock)
	row("served T2/T3 (probe)", errs[3])
	row("served T2/T3 (probe, kernel T1)", errsK[3])
	row("chronyd -x client: its sources' last samples, from its served clock (not − shift)", st.chronySources)
	row("chronyd -x client: its clock (chronyc tracking System time)", st.chronyClock)
	row("chronyd -x client: served (probe)", errs[4])
	row("chronyd -x client: served (probe, kernel T1)", errsK[4])
	fmt.Fprintln(b)
}
