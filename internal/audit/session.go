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
	id  uint64
	seq uint64
	end int64
}

// session ships over one connection until it fails or ctx ends.
func (s *Shipper) session(ctx context.Context) error {
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	var t transport
	if s.cfg.Transport == "relp" {
		if t, err = openRELP(conn); err != nil {
			conn.Close()
			return err
		}
	} else {
		t = openTLS(conn)
	}
	defer t.close()
	s.sp.seek(s.acked.Offset)
	s.update(func(st *ShipStatus) { st.Connected = true })
	s.log.Info("audit shipping connected", zap.String("collector", s.Status().Target), zap.Uint64("from_seq", s.acked.Seq+1))
	var inflight []pending
	confirmed := map[uint64]bool{} // acks ahead of the oldest in flight; at most window
	progress, lastSave := s.now(), s.now()
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	var msg []byte
	for {
		for len(inflight) < t.window() {
			it, ok, err := s.sp.next(s.src.Durable())
			if err != nil {
				return fmt.Errorf("reading the audit file: %w", err)
			}
			if !ok {
				break
			}
			msg = audit.SyslogMessage(msg[:0], &it.rec, it.line, s.cfg.Hostname)
			id, err := t.send(msg)
			if err != nil {
				return err
			}
			inflight = append(inflight, pending{id: id, seq: it.rec.Seq, end: it.end})
		}
		if err := t.flush(); err != nil {
			return err
		}
		select {
		case id := <-t.acked():
			confirmed[id] = true
		case err := <-t.failed():
			// Acknowledgements that arrived before the failure still
			// count: fewer duplicates after the reconnect.
			for drained := false; !drained; {
				select {
				case id := <-t.acked():
					confirmed[id] = true
				default:
					drained = true
				}
			}
			s.confirm(&inflight, confirmed)
			return err
		case <-s.src.Notify():
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			for _, id := range t.poll(now) {
				confirmed[id] = true
			}
			if skipped := s.checkSpoolSkipped(); skipped {
				inflight, confirmed = nil, map[uint64]bool{}
			}
			if len(inflight) > 0 && now.Sub(progress) > ackTimeout {
				return fmt.Errorf("no acknowledgement for %v", ackTimeout)
			}
			if now.Sub(lastSave) >= saveEvery {
				s.saveCursor()
				lastSave = now
			}
		}
		if s.confirm(&inflight, confirmed) {
			progress = s.now()
		}
	}
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
