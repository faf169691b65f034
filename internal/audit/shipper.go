package audit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
)

// Source is what the shipper reads: the writer's file (and the segments
// rotated out of it) and how far it is complete. *Writer implements it.
type Source interface {
	Path() string
	Position() Position
	Notify() <-chan struct{}
}

// Overflow policies for a backlog beyond ShipConfig.SpoolMax.
const (
	// OverflowKeep keeps every record for the collector (the file is the
	// spool; disk is the bound) and raises the alarm.
	OverflowKeep = "keep"
	// OverflowDropOldest gives up shipping the oldest records (they stay
	// in the local file, verifiable) down to half the limit, and records
	// the skipped range in an audit.ship.overflow record that is shipped.
	OverflowDropOldest = "drop-oldest"
)

// ShipConfig configures a Shipper.
type ShipConfig struct {
	Transport string // "relp" or "tls" (RFC 5425)
	Addr      string // host:port
	// TLS is required for "tls" and optional for "relp" (RELP over TLS).
	TLS      *tls.Config
	Hostname string // RFC 5424 HOSTNAME
	// Cursor is where the last acknowledged position is kept.
	Cursor string
	// SpoolMax bounds the backlog (bytes of the file not yet delivered)
	// before the alarm and the overflow policy act; 0 means 64 MiB.
	SpoolMax int64
	Overflow string
	Rec      Recorder // the shipper's own events (alarm, overflow)
	Now      func() time.Time
	Log      *zap.Logger
}

// Shipping constants: what they protect is named with each.
const (
	DefaultSpoolMax = 64 << 20
	// dialTimeout and ioTimeout keep a collector that accepts and then
	// stalls from holding the shipper (never the time service) forever.
	dialTimeout = 5 * time.Second
	ioTimeout   = 10 * time.Second
	ackTimeout  = 30 * time.Second
	// Back-off between connection attempts: doubling, with jitter so that
	// a fleet of gateways does not reconnect in step after an outage.
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
	// saveEvery bounds cursor writes (each is fsync + rename): a crash
	// re-sends at most this much, as duplicates with the same seq.
	saveEvery = 200 * time.Millisecond
	tickEvery = 100 * time.Millisecond
)

// Shipper delivers the audit file to a collector, at least once.
type Shipper struct {
	cfg   ShipConfig
	src   Source
	log   *zap.Logger
	acked Cursor // in memory; saved to cfg.Cursor at most every saveEvery
	saved Cursor
	st    *stream

	mu     sync.Mutex
	status ShipStatus
}

// ShipStatus is what a status or metrics reader sees.
type ShipStatus struct {
	Target       string
	Connected    bool
	AckedSeq     uint64
	BacklogBytes int64
	SpoolMax     int64  // the backlog's limit (auditship spool)
	Alarm        bool   // backlog over SpoolMax
	Skipped      uint64 // records given up by drop-oldest
	Reconnects   uint64
	LastError    string
	// Since is when Connected last changed, or the shipper started: how
	// long the collector has been out of reach is the first thing an
	// operator asks of a DISCONNECTED.
	Since time.Time
}

// NewShipper loads the cursor and checks it against the file.
func NewShipper(cfg ShipConfig, src Source) (*Shipper, error) {
	if cfg.Transport != "relp" && cfg.Transport != "tls" {
		return nil, fmt.Errorf("audit: unknown transport %q", cfg.Transport)
	}
	if cfg.Transport == "tls" && cfg.TLS == nil {
		return nil, errors.New("audit: tls transport needs a TLS configuration")
	}
	if cfg.SpoolMax <= 0 {
		cfg.SpoolMax = DefaultSpoolMax
	}
	if cfg.Overflow == "" {
		cfg.Overflow = OverflowKeep
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Rec == nil {
		cfg.Rec = Nop{}
	}
	c, err := loadCursor(cfg.Cursor)
	if err != nil {
		return nil, err
	}
	st := newStream(src.Path(), src, cfg.Log)
	c, ok := st.locate(c)
	if !ok {
		cfg.Log.Warn("the audit shipping cursor matches no audit file (file replaced?); shipping from the oldest file",
			zap.String("cursor", cfg.Cursor))
	}
	if err := st.openFile(c.File, c.Offset); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	c.File = st.first
	s := &Shipper{cfg: cfg, src: src, log: cfg.Log, acked: c, saved: c, st: st}
	s.status = ShipStatus{Target: cfg.Transport + "://" + cfg.Addr, AckedSeq: c.Seq, SpoolMax: cfg.SpoolMax, Since: s.now()}
	return s, nil
}

// Status returns a snapshot.
func (s *Shipper) Status() ShipStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	return st
}

func (s *Shipper) update(f func(*ShipStatus)) {
	s.mu.Lock()
	f(&s.status)
	s.mu.Unlock()
}

// Run ships until ctx ends. Failures never end it: it reconnects with
// back-off, and the cursor makes every reconnect resume where the
// collector's acknowledgements stopped.
func (s *Shipper) Run(ctx context.Context) error {
	defer s.st.close()
	defer s.saveCursor()
	backoff := minBackoff
	for ctx.Err() == nil {
		s.checkSpool()
		before := s.acked.Seq
		err := s.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		prev := s.Status()
		now := s.now()
		s.update(func(st *ShipStatus) {
			if st.Connected {
				st.Since = now
			}
			st.Connected = false
			st.LastError = err.Error()
			st.Reconnects++
		})
		// Warn when shipping stops or fails differently; the retries of a
		// long outage (every 30 s at most) are Debug, so they do not flood.
		level := zap.DebugLevel
		if prev.Connected || prev.LastError != err.Error() {
			level = zap.WarnLevel
		}
		s.log.Log(level, "audit shipping interrupted; will resume from the last acknowledged record",
			zap.String("collector", prev.Target), zap.Uint64("acked_seq", s.acked.Seq), zap.Error(err))
		if s.acked.Seq != before {
			backoff = minBackoff
		}
		s.saveCursor()
		if !s.sleep(ctx, jitter(backoff)) {
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
	return nil
}

// sleep waits d, watching the spool meanwhile: an outage is exactly when
// the backlog grows.
func (s *Shipper) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-tick.C:
			s.checkSpool()
		}
	}
}

// jitter spreads d over [d/2, 3d/2).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

func (s *Shipper) saveCursor() {
	if s.acked == s.saved {
		return
	}
	if err := saveCursor(s.cfg.Cursor, s.acked); err != nil {
		s.log.Error("cannot save the audit shipping cursor; a restart will re-send more", zap.Error(err))
		return
	}
	s.saved = s.acked
}

// Pin is the first seq not yet delivered: audit log retention keeps the
// segments from the one holding it on.
func (s *Shipper) Pin() uint64 { return s.Status().AckedSeq + 1 }

// advance records that everything up to it is delivered.
func (s *Shipper) advance(it pending) {
	if it.file < s.acked.File || (it.file == s.acked.File && it.end <= s.acked.Offset) {
		return
	}
	s.acked = Cursor{Seq: it.seq, Offset: it.end, Hash: it.hash, File: it.file}
	s.update(func(st *ShipStatus) { st.AckedSeq = it.seq })
}

// checkSpool raises or clears the alarm and applies the overflow policy.
func (s *Shipper) checkSpool() {
	s.acked = s.st.past(s.acked)
	backlog := s.st.backlog(s.acked.File, s.acked.Offset)
	st := s.Status()
	s.update(func(st *ShipStatus) { st.BacklogBytes = backlog })
	switch {
	case backlog > s.cfg.SpoolMax && !st.Alarm:
		s.update(func(st *ShipStatus) { st.Alarm = true })
		s.log.Warn("AUDIT SHIPPING BACKLOG over its limit: the collector is not keeping up or unreachable",
			zap.Int64("backlog_bytes", backlog), zap.Int64("limit", s.cfg.SpoolMax), zap.String("overflow", s.cfg.Overflow))
		s.cfg.Rec.Record(audit.Event{Type: audit.TypeShipAlarm, Outcome: audit.OutcomeWarning,
			Subject: audit.Subject{Source: st.Target}, Details: map[string]string{
				"backlog_bytes": strconv.FormatInt(backlog, 10), "limit": strconv.FormatInt(s.cfg.SpoolMax, 10),
				"overflow": s.cfg.Overflow, "acked_seq": strconv.FormatUint(s.acked.Seq, 10)}})
	case backlog <= s.cfg.SpoolMax/2 && st.Alarm:
		s.update(func(st *ShipStatus) { st.Alarm = false })
		s.log.Info("audit shipping backlog back under half its limit", zap.Int64("backlog_bytes", backlog))
		s.cfg.Rec.Record(audit.Event{Type: audit.TypeShipAlarm, Outcome: audit.OutcomeOK,
			Subject: audit.Subject{Source: st.Target}, Details: map[string]string{"backlog_bytes": strconv.FormatInt(backlog, 10)}})
	}
	if backlog > s.cfg.SpoolMax && s.cfg.Overflow == OverflowDropOldest {
		s.skip(backlog - s.cfg.SpoolMax/2)
		backlog = s.st.backlog(s.acked.File, s.acked.Offset)
		s.update(func(st *ShipStatus) { st.BacklogBytes = backlog })
	}
}

// skip gives up shipping the oldest undelivered records, about want bytes
// of them, across segments as needed.
func (s *Shipper) skip(want int64) {
	sk := newStream(s.src.Path(), s.src, s.log)
	defer sk.close()
	s.acked = s.st.past(s.acked)
	if err := sk.openFile(s.acked.File, s.acked.Offset); err != nil {
		return
	}
	from, to, n := uint64(0), uint64(0), uint64(0)
	for skipped := int64(0); skipped < want; {
		it, ok, err := sk.next()
		if err != nil || !ok {
			break
		}
		if from == 0 {
			from = it.rec.Seq
		}
		to, n = it.rec.Seq, n+1
		skipped += int64(len(it.line)) + 1
		s.acked = Cursor{Seq: it.rec.Seq, Offset: it.end, Hash: audit.HashLine(it.line), File: it.file}
	}
	if n == 0 {
		return
	}
	if err := s.st.seek(s.acked.File, s.acked.Offset); err != nil {
		s.log.Error("audit shipping: cannot reopen the audit file after skipping", zap.Error(err))
	}
	s.saveCursor()
	s.update(func(st *ShipStatus) { st.Skipped += n; st.AckedSeq = s.acked.Seq })
	s.log.Error("audit shipping overflow: oldest records will not reach the collector (they stay in the local file)",
		zap.Uint64("from_seq", from), zap.Uint64("to_seq", to), zap.Uint64("records", n))
	s.cfg.Rec.Record(audit.Event{Type: audit.TypeShipOverflow, Outcome: audit.OutcomeFailed,
		Subject: audit.Subject{Source: s.Status().Target}, Details: map[string]string{
			"from_seq": strconv.FormatUint(from, 10), "to_seq": strconv.FormatUint(to, 10),
			"records": strconv.FormatUint(n, 10), "policy": OverflowDropOldest}})
}

func (s *Shipper) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, err
	}
	if s.cfg.TLS == nil {
		return c, nil
	}
	tc := tls.Client(c, s.cfg.TLS)
	hctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with the collector: %w", err)
	}
	return tc, nil
}
