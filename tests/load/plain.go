package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// socketBuffer is asked for on every socket (the kernel caps it at
	// net.core.rmem_max/wmem_max) so that the tool's own sockets are not
	// where replies are lost.
	socketBuffer = 8 << 20
	// sendBatch is how many requests a sender writes before it looks at the
	// clock and the pacer again.
	sendBatch = 32
	// recvBatch is how many datagrams one read system call may return.
	recvBatch = 64
	// recvBufSize holds any reply to a 48-byte request: a server must not
	// answer with more than it received (no amplification). A longer
	// datagram is truncated and still classified by its header.
	recvBufSize = 1024
	// minSleep is the shortest pause of a paced sender; shorter waits spin
	// through the batch loop instead.
	minSleep = 50 * time.Microsecond
)

// worker is one socket's state: its ring of nonces, counters and latencies.
type worker struct {
	ring *Ring
	cnt  Counters
	hist Histogram
	res  Histogram // the server's residence (Residence) of each reply
	// lastReply is when the last matching reply arrived (ns since the run
	// started); written by the receiving goroutine, read after it ended.
	lastReply int64
	// firstErr is the first failure of -mode ke, for the report.
	firstErr atomic.Pointer[error]
}

func newWorkers(n, ringSize int) ([]*worker, error) {
	ws := make([]*worker, n)
	for i := range ws {
		r, err := NewRing(ringSize)
		if err != nil {
			return nil, err
		}
		ws[i] = &worker{ring: r}
	}
	return ws, nil
}

// receive counts one datagram read at now (ns since the run started).
func (w *worker) receive(b []byte, now int64) {
	kind, origin := ParseReply(b)
	if kind == ReplyBad {
		w.cnt.Bad.Add(1)
		return
	}
	sent, ok := w.ring.Take(origin)
	switch {
	case !ok:
		w.cnt.Unmatched.Add(1)
	case kind == ReplyKoD:
		w.cnt.KoD.Add(1)
	default:
		w.cnt.Replies.Add(1)
		w.hist.Record(time.Duration(now - sent))
		if d, ok := Residence(b); ok {
			w.res.Record(d)
		}
		w.lastReply = now
	}
}

// runPlain is -mode plain and -mode nts.
func runPlain(ctx context.Context, cfg Config, log io.Writer) (*Result, error) {
	target, err := loopbackTarget(cfg.Target)
	if err != nil {
		return nil, err
	}
	ws, err := newWorkers(cfg.Conns, cfg.Ring)
	if err != nil {
		return nil, err
	}
	var ntsReqs []*ntsRequests
	if cfg.Mode == "nts" {
		ke, err := keExchange(ctx, cfg.KE, cfg.CA)
		if err != nil {
			return nil, err
		}
		for range cfg.Conns {
			r, err := buildNTSRequests(ke, cfg.Ring)
			if err != nil {
				return nil, err
			}
			ntsReqs = append(ntsReqs, r)
		}
	}
	conns := make([]*net.UDPConn, cfg.Conns)
	defer closeAll(conns)
	for i := range conns {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target))
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		c.SetReadBuffer(socketBuffer)
		c.SetWriteBuffer(socketBuffer)
		conns[i] = c
		if ntsReqs != nil {
			if err := ntsReqs[i].preflight(c); err != nil {
				return nil, err
			}
		}
	}

	s := startSession(cfg, ws, target.Port(), log)
	sendCtx, cancel := context.WithDeadline(ctx, s.start.Add(cfg.Duration))
	defer cancel()
	pacer := Pacer{Rate: cfg.Rate / float64(cfg.Conns)}
	var senders sync.WaitGroup
	for i, c := range conns {
		w := ws[i]
		fill := plainFill
		if cfg.XLeave {
			fill = xleaveFill
		}
		if ntsReqs != nil {
			fill = ntsReqs[i].fill
		}
		senders.Go(func() { sendPlain(sendCtx, c, w, pacer, s.start, fill) })
		s.receive(c, w)
	}
	senders.Wait()
	res := &Result{Mode: cfg.Mode, Target: target.String(), Conns: cfg.Conns, RateTarget: cfg.Rate}
	s.end(ctx, conns, res)
	return res, nil
}

// plainFill writes request number seq, a 48-byte request with a random
// nonce, into buf and records it in w's ring.
func plainFill(buf []byte, w *worker, seq uint64, now int64) int {
	BuildRequest(buf, w.ring.Put(seq, rand.Uint64(), now))
	return ntpLen
}

// xleaveFill is plainFill for a request an interleaved-mode server must
// look up and keep: a random origin ending in 1 (as if it echoed one of the
// server's receive timestamps) and a random receive timestamp.
func xleaveFill(buf []byte, w *worker, seq uint64, now int64) int {
	n := plainFill(buf, w, seq, now)
	binary.BigEndian.PutUint64(buf[offOrigin:], rand.Uint64()|1)
	binary.BigEndian.PutUint64(buf[offOrigin+8:], rand.Uint64()|2)
	return n
}

func closeAll(conns []*net.UDPConn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// sendPlain writes requests made by fill on c until ctx ends, paced by p,
// in batches of up to sendBatch datagrams per system call.
func sendPlain(ctx context.Context, c *net.UDPConn, w *worker, p Pacer, start time.Time, fill func([]byte, *worker, uint64, int64) int) {
	b := newBatch(sendBatch, recvBufSize)
	u, err := newUDPBatcher(c, b)
	if err != nil {
		return
	}
	var seq uint64
	for ctx.Err() == nil {
		elapsed := time.Since(start)
		n := p.Due(elapsed, seq, sendBatch)
		if n == 0 {
			if wait := p.NextAt(seq) - elapsed; wait >= minSleep {
				time.Sleep(wait)
			}
			continue
		}
		now := int64(time.Since(start))
		for i := range n {
			b.lens[i] = fill(b.bufs[i], w, seq, now)
			seq++
		}
		w.cnt.Sent.Add(uint64(n))
		// A refusal (ECONNREFUSED: an ICMP port unreachable came back
		// for an earlier request, the server is not there) ends the
		// batch; the rest count as send errors.
		if k, _ := u.Send(n); k < n {
			w.cnt.SendErrors.Add(uint64(n - k))
		}
	}
}

// receiveBatches counts what arrives on c, up to recvBatch datagrams per
// system call, until its read deadline passes or it is closed.
func receiveBatches(c *net.UDPConn, w *worker, start time.Time) {
	b := newBatch(recvBatch, recvBufSize)
	u, err := newUDPBatcher(c, b)
	if err != nil {
		return
	}
	for {
		n, err := u.Recv()
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return
		}
		now := int64(time.Since(start))
		for i := range n {
			w.receive(b.bufs[i][:b.lens[i]], now)
		}
	}
}
