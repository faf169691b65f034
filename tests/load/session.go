package main

import (
	"context"
	"io"
	"net"
	"sync"
	"time"
)

// session is what both modes share around their senders and receivers:
// the start time, progress sampling, the grace period for late replies,
// and the figures at the end.
type session struct {
	cfg        Config
	ws         []*worker
	cs         []*Counters
	targetPort uint16

	start       time.Time
	dropsBefore uint64
	haveDrops   bool
	prog        *progress
	progDone    chan struct{}
	progWG      sync.WaitGroup
	receivers   sync.WaitGroup
}

// startSession reads the target socket's drop counter, starts the clock and
// the progress sampler.
func startSession(cfg Config, ws []*worker, targetPort uint16, log io.Writer) *session {
	s := &session{cfg: cfg, ws: ws, targetPort: targetPort, progDone: make(chan struct{})}
	for _, w := range ws {
		s.cs = append(s.cs, &w.cnt)
	}
	if cfg.PID != 0 {
		s.dropsBefore, s.haveDrops = socketDrops(cfg.PID, targetPort)
	}
	s.start = time.Now()
	s.prog = &progress{start: s.start, every: cfg.Every, pid: cfg.PID, cs: s.cs, out: log, quiet: cfg.Quiet}
	s.progWG.Go(func() { s.prog.run(s.progDone) })
	return s
}

// receive starts a goroutine counting what arrives on c for w.
func (s *session) receive(c *net.UDPConn, w *worker) {
	s.receivers.Go(func() { receiveBatches(c, w, s.start) })
}

// end is called when the senders have stopped: it waits up to the grace
// period (none when interrupted) for late replies on conns, stops the
// sampler and fills res.
func (s *session) end(ctx context.Context, conns []*net.UDPConn, res *Result) {
	sending := time.Since(s.start)
	grace := s.cfg.Grace
	if ctx.Err() != nil {
		grace = 0
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(grace))
	}
	s.receivers.Wait()
	close(s.progDone)
	s.progWG.Wait()

	var h, rh Histogram
	for _, w := range s.ws {
		h.Merge(&w.hist)
		rh.Merge(&w.res)
	}
	res.finish(s.cs, &h, sending, lastReply(s.ws))
	res.residence(&rh)
	res.Samples = s.prog.final()
	for _, c := range conns {
		if d, ok := socketDrops(0, uint16(c.LocalAddr().(*net.UDPAddr).Port)); ok {
			res.OwnDrops += d
		}
	}
	if s.haveDrops {
		if after, ok := socketDrops(s.cfg.PID, s.targetPort); ok && after >= s.dropsBefore {
			d := after - s.dropsBefore
			res.TargetDrops = &d
		}
	}
}

// lastReply is the latest reply time of all workers.
func lastReply(ws []*worker) time.Duration {
	var t int64
	for _, w := range ws {
		t = max(t, w.lastReply)
	}
	return time.Duration(t)
}
