package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"timegate/nts"
)

// runKE is -mode ke: cfg.Conns clients each run NTS-KE sessions with
// cfg.KE back to back (at most cfg.Rate sessions per second in all, 0 =
// as fast as they go) for cfg.Duration. A session that ends with keys and
// at least one cookie is a reply; any other end is a send error. Latency is
// the whole session: TCP, TLS 1.3, the KE records. A KE client costs about
// what the server does, so one load core cannot saturate one server core:
// the script divides handshakes by the server's CPU time instead.
func runKE(ctx context.Context, cfg Config, log io.Writer) (*Result, error) {
	keAddr, err := loopbackTarget(cfg.KE)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(cfg.CA)
	if err != nil {
		return nil, fmt.Errorf("load: -ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("load: -ca %s: no certificate", cfg.CA)
	}
	// X25519 alone, as chrony's GnuTLS clients offer it: Go's default
	// X25519MLKEM768 hybrid costs a Go server an ML-KEM encapsulation that
	// a GnuTLS server (chronyd 4.3) never does, which would make the two
	// servers' figures measure different handshakes.
	conf := &tls.Config{RootCAs: pool, CurvePreferences: []tls.CurveID{tls.X25519}}
	ws := make([]*worker, cfg.Conns)
	cs := make([]*Counters, cfg.Conns)
	for i := range ws {
		ws[i] = &worker{}
		cs[i] = &ws[i].cnt
	}
	start := time.Now()
	prog := &progress{start: start, every: cfg.Every, pid: cfg.PID, cs: cs, out: log, quiet: cfg.Quiet}
	progDone := make(chan struct{})
	var progWG sync.WaitGroup
	progWG.Go(func() { prog.run(progDone) })
	sendCtx, cancel := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer cancel()
	pacer := Pacer{Rate: cfg.Rate / float64(cfg.Conns)}
	var wg sync.WaitGroup
	for i, w := range ws {
		d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(keSource(keAddr.Addr(), i), 0))}
		wg.Go(func() { keLoop(sendCtx, d, cfg.KE, conf, w, pacer, start) })
	}
	wg.Wait()
	close(progDone)
	progWG.Wait()
	var h Histogram
	for _, w := range ws {
		h.Merge(&w.hist)
	}
	res := &Result{Mode: "ke", Target: cfg.KE, Conns: cfg.Conns, RateTarget: cfg.Rate}
	res.finish(cs, &h, time.Since(start), lastReply(ws))
	for _, w := range ws {
		if e := w.firstErr.Load(); e != nil && res.FirstError == "" {
			res.FirstError = (*e).Error()
		}
	}
	res.Samples = prog.final()
	return res, nil
}

// keLoop runs sessions one after another until ctx ends.
//
// The end is also read from the clock: once ctx's deadline has passed, a
// dial fails at once ("i/o timeout") while ctx.Err() can stay nil until
// ctx's timer has run, which on a busy load core took long enough for
// tens of thousands of such instant failures to be counted as errors.
func keLoop(ctx context.Context, d *net.Dialer, addr string, conf *tls.Config, w *worker, p Pacer, start time.Time) {
	deadline, bounded := ctx.Deadline()
	running := func() bool { return ctx.Err() == nil && (!bounded || time.Now().Before(deadline)) }
	var seq uint64
	for running() {
		elapsed := time.Since(start)
		if p.Due(elapsed, seq, 1) == 0 {
			if wait := p.NextAt(seq) - elapsed; wait > 0 {
				time.Sleep(wait)
			}
			continue
		}
		seq++
		w.cnt.Sent.Add(1)
		t0 := time.Now()
		kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ke, err := nts.Exchange(kctx, d, addr, conf, nil)
		cancel()
		if err != nil || len(ke.Cookies) == 0 {
			if running() {
				w.cnt.SendErrors.Add(1)
				if err != nil {
					w.firstErr.CompareAndSwap(nil, &err)
				}
			} else {
				w.cnt.Sent.Add(^uint64(0)) // cut short by the end of the run: not counted
			}
			continue
		}
		w.cnt.Replies.Add(1)
		w.hist.Record(time.Since(t0))
		w.lastReply = int64(time.Since(start))
	}
}
