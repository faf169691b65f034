package audit

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
)

// transport is one connection to the collector. send queues a message and
// returns its id; acked yields ids the collector confirmed (any order);
// poll returns ids confirmed by the passing of time (TLS, which has no
// acknowledgement); failed yields the error that ends the connection.
type transport interface {
	send(msg []byte) (uint64, error)
	flush() error
	acked() <-chan uint64
	poll(now time.Time) []uint64
	failed() <-chan error
	close()
	window() int
}

// pending is a message sent and not yet confirmed.
type pending struct {
	id   uint64
	seq  uint64
	file uint64 // first seq of the file it ends in
	end  int64
	hash audit.Hash
}

// session ships over one connection until it fails or ctx ends.
func (s *Shipper) session(ctx context.Context) error {
	t, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer t.close()
	ss := &shipSession{Shipper: s, t: t, confirmed: map[uint64]bool{}, progress: s.now(), lastSave: s.now()}
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		if err := ss.fill(); err != nil {
			return err
		}
		select {
		case id := <-t.acked():
			ss.confirmed[id] = true
		case err := <-t.failed():
			ss.drainAcks()
			return err
		case <-s.src.Notify():
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			if err := ss.onTick(now); err != nil {
				return err
			}
		}
		if s.confirm(&ss.inflight, ss.confirmed) {
			ss.progress = s.now()
		}
	}
}

// connect dials the collector and opens the transport.
func (s *Shipper) connect(ctx context.Context) (transport, error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	var t transport
	if s.cfg.Transport == "relp" {
		if t, err = openRELP(conn); err != nil {
			conn.Close()
			return nil, err
		}
	} else {
		t = openTLS(conn)
	}
	s.acked = s.st.past(s.acked)
	if err := s.st.seek(s.acked.File, s.acked.Offset); err != nil {
		t.close()
		return nil, fmt.Errorf("reading the audit file: %w", err)
	}
	now := s.now()
	s.update(func(st *ShipStatus) { st.Connected, st.Since = true, now })
	s.log.Info("audit shipping connected", zap.String("collector", s.Status().Target), zap.Uint64("from_seq", s.acked.Seq+1))
	return t, nil
}

// shipSession is the state of one connection: what is in flight.
type shipSession struct {
	*Shipper
	t         transport
	inflight  []pending
	confirmed map[uint64]bool // confirmations ahead of the oldest in flight; at most a window
	progress  time.Time       // last time the cursor moved
	lastSave  time.Time
	msg       []byte
}

// fill sends records until the window is full or the file has no more.
func (ss *shipSession) fill() error {
	for len(ss.inflight) < ss.t.window() {
		it, ok, err := ss.st.next()
		if err != nil {
			return fmt.Errorf("reading the audit file: %w", err)
		}
		if !ok {
			break
		}
		ss.msg = audit.SyslogMessage(ss.msg[:0], &it.rec, it.line, ss.cfg.Hostname)
		id, err := ss.t.send(ss.msg)
		if err != nil {
			return err
		}
		ss.inflight = append(ss.inflight, pending{id: id, seq: it.rec.Seq, file: it.file, end: it.end, hash: audit.HashLine(it.line)})
	}
	return ss.t.flush()
}

// drainAcks counts acknowledgements that arrived with a failure: fewer
// duplicates after the reconnect.
func (ss *shipSession) drainAcks() {
	for {
		select {
		case id := <-ss.t.acked():
			ss.confirmed[id] = true
		default:
			ss.confirm(&ss.inflight, ss.confirmed)
			return
		}
	}
}

// onTick does the periodic work: time-based confirmation (TLS), the spool
// check, the acknowledgement timeout and saving the cursor.
func (ss *shipSession) onTick(now time.Time) error {
	for _, id := range ss.t.poll(now) {
		ss.confirmed[id] = true
	}
	if ss.checkSpoolSkipped() {
		ss.inflight, ss.confirmed = nil, map[uint64]bool{}
	}
	if len(ss.inflight) > 0 && now.Sub(ss.progress) > ackTimeout {
		return fmt.Errorf("no acknowledgement for %v", ackTimeout)
	}
	if now.Sub(ss.lastSave) >= saveEvery {
		ss.saveCursor()
		ss.lastSave = now
	}
	return nil
}

// confirm advances the cursor over the confirmed prefix of inflight.
func (s *Shipper) confirm(inflight *[]pending, confirmed map[uint64]bool) bool {
	moved := false
	for len(*inflight) > 0 && confirmed[(*inflight)[0].id] {
		delete(confirmed, (*inflight)[0].id)
		s.advance((*inflight)[0])
		*inflight = (*inflight)[1:]
		moved = true
	}
	return moved
}

// checkSpoolSkipped runs checkSpool and says whether it skipped records
// (the session then drops what it has in flight and reads on from there).
func (s *Shipper) checkSpoolSkipped() bool {
	before := s.acked
	s.checkSpool()
	return s.acked != before
}

func (s *Shipper) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}
