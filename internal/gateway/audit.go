package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"timegate/audit"
	"timegate/certs"
	iaudit "timegate/internal/audit"
	"timegate/internal/config"
	"timegate/internal/control"
	"timegate/internal/report"
	"timegate/internal/secfile"
)

// auditTrail is the running audit log: the writer, the shipper (nil
// without auditship) and the episode aggregator fed by the per-packet
// ring.
type auditTrail struct {
	w        *iaudit.Writer
	ship     *iaudit.Shipper
	ring     *iaudit.Ring
	episodes *iaudit.Episodes
	log      *zap.Logger
}

// shipDrainTimeout is how long a stopping gateway waits for the collector
// to acknowledge its last records (the stop record among them); what is
// left is shipped at the next start.
const shipDrainTimeout = 2 * time.Second

// openAudit opens the audit trail when `auditlog` is set; the first record
// is the start (or, with startErr, a failed start).
func (g *Gateway) openAudit(cfg *config.Config) (*auditTrail, error) {
	a := cfg.Audit
	if a.Log == "" {
		return nil, nil
	}
	pos := func(d string) config.Position { return cfg.Positions[d] }
	alg, err := audit.ParseAlg(a.KeyAlg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: auditkey: %v", config.ErrConfig, pos("auditkey"), err)
	}
	keyPath := a.Key
	if keyPath == "" {
		keyPath = filepath.Join(g.opts.StateDir, iaudit.KeyFileName)
	}
	signer, created, err := iaudit.LoadOrCreateKey(keyPath, alg, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: auditkey: %v", config.ErrConfig, pos("auditkey"), err)
	}
	log := g.log.Named("audit")
	if created {
		log.Warn("generated a new audit signing key; hand its public key to whoever verifies the audit log",
			zap.String("key", keyPath), zap.String("public_key", keyPath+".pub"), zap.String("alg", string(alg)),
			zap.String("fingerprint", signer.Public().Fingerprint()))
	}
	if err := os.MkdirAll(filepath.Dir(a.Log), 0o750); err != nil {
		return nil, fmt.Errorf("%w: %s: auditlog: %v", config.ErrConfig, pos("auditlog"), err)
	}
	w, err := iaudit.OpenWriter(iaudit.WriterConfig{
		Path: a.Log, Signer: signer, CheckpointRecords: a.CheckpointRecords, CheckpointInterval: a.CheckpointInterval,
		NoSync: a.NoSync, RotateSize: a.RotateSize, RotateEvery: a.RotateEvery, Keep: a.RotateKeep, Now: g.opts.Now, Log: log,
	}, g.startEvent(signer, created))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: auditlog: %v", config.ErrConfig, pos("auditlog"), err)
	}
	t := &auditTrail{w: w, ring: iaudit.NewRing(iaudit.DefaultRingSize), log: log}
	t.episodes = &iaudit.Episodes{Ring: t.ring, Rec: w, Interval: a.EpisodeInterval, Now: g.opts.Now, KEReason: keReasonName}
	if a.Ship != nil {
		if t.ship, err = newShipper(a, w, log, pos("auditship")); err != nil {
			w.Close(audit.Event{Type: audit.TypeStop, Outcome: audit.OutcomeFailed, Details: map[string]string{"error": err.Error()}})
			return nil, err
		}
		w.SetPin(t.ship.Pin)
	}
	log.Info("audit trail", zap.String("file", a.Log), zap.String("key_fingerprint", signer.Public().Fingerprint()),
		zap.Bool("shipping", t.ship != nil))
	return t, nil
}

func (g *Gateway) startEvent(s *audit.Signer, created bool) audit.Event {
	d := map[string]string{"pid": strconv.Itoa(os.Getpid()), "config": g.opts.ConfigPath,
		"audit_key": s.Public().Fingerprint(), "audit_alg": string(s.Public().Alg)}
	if d["config"] == "" {
		d["config"] = "(embedded defaults)"
	}
	if created {
		d["audit_key_created"] = "true"
	}
	return audit.Event{Type: audit.TypeStart, Outcome: audit.OutcomeOK, Details: d}
}

func newShipper(a config.Audit, w *iaudit.Writer, log *zap.Logger, pos config.Position) (*iaudit.Shipper, error) {
	s := a.Ship
	var tc *tls.Config
	if s.TLS {
		var err error
		if tc, err = shipTLS(s); err != nil {
			return nil, fmt.Errorf("%w: %s: auditship: %v", config.ErrConfig, pos, err)
		}
	}
	host, _ := os.Hostname()
	sh, err := iaudit.NewShipper(iaudit.ShipConfig{
		Transport: s.Transport, Addr: s.Addr, TLS: tc, Hostname: host, Cursor: a.Log + ".shipped",
		SpoolMax: s.SpoolMax, Overflow: s.Overflow, Rec: w, Log: log.Named("ship"),
	}, w)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: auditship: %v", config.ErrConfig, pos, err)
	}
	return sh, nil
}

// shipTLS trusts only the configured CA for the collector and presents the
// client certificate when one is configured (its key must be private).
func shipTLS(s *config.AuditShip) (*tls.Config, error) {
	caPEM, err := os.ReadFile(s.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("ca %s: no PEM certificate", s.CA)
	}
	name := s.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(s.Addr)
	}
	tc := &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}
	if s.Cert != "" {
		certPEM, err := os.ReadFile(s.Cert)
		if err != nil {
			return nil, err
		}
		keyPEM, err := secfile.ReadPrivate(s.Key)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// run starts the episode aggregator and the shipper. The shipper gets its
// own context so that it can ship the stop record after ctx ends.
func (t *auditTrail) run(ctx context.Context, spawn func(func() error)) (stopShip func()) {
	spawn(func() error { return t.episodes.Run(ctx) })
	if t.ship == nil {
		return func() {}
	}
	shipCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.ship.Run(shipCtx)
	}()
	return func() {
		deadline := time.Now().Add(shipDrainTimeout)
		for t.ship.Status().AckedSeq < t.w.Seq() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
	}
}

// close writes the stop record and the final checkpoint.
func (t *auditTrail) close(runErr error) {
	e := audit.Event{Type: audit.TypeStop, Outcome: audit.OutcomeOK}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		e.Outcome, e.Details = audit.OutcomeFailed, map[string]string{"error": runErr.Error()}
	}
	if err := t.w.Close(e); err != nil {
		t.log.Error("audit log", zap.Error(err))
	}
}

// Audit returns the recorder components report audit events to (the
// control server: commands and refusals). It never blocks; without
// `auditlog` it discards.
func (g *Gateway) Audit() iaudit.Recorder { return g.rec }

// auditStatus is the audit trail for report.Status; nil without auditlog.
// Listing the segments makes it a status- and scrape-time read.
func (g *Gateway) auditStatus() *report.AuditStatus {
	t := g.audit
	if t == nil {
		return nil
	}
	ws := t.w.Stats()
	st := &report.AuditStatus{File: ws.Path, LastSeq: ws.Seq, Segments: ws.Segments, DiskBytes: ws.DiskBytes,
		DroppedTotal: ws.DroppedTotal, WriteFailing: ws.Failing, LastWriteError: ws.LastError, RotateError: ws.RotateError}
	if t.ship != nil {
		s := t.ship.Status()
		st.Shipping = &report.AuditShipping{Target: s.Target, Connected: s.Connected, AckedSeq: s.AckedSeq,
			BacklogBytes: s.BacklogBytes, SpoolMax: s.SpoolMax, Alarm: s.Alarm, Skipped: s.Skipped,
			Reconnects: s.Reconnects, LastError: s.LastError, Since: s.Since}
	}
	return st
}

// reload applies what a reload may change in a running trail: rotation.
func (t *auditTrail) reload(a config.Audit) {
	r := iaudit.Rotation{Size: a.RotateSize, Every: a.RotateEvery, Keep: a.RotateKeep}
	if r != t.w.Rotation() {
		t.w.SetRotation(r)
		t.log.Info("auditrotate applied", zap.Int64("size", r.Size), zap.Duration("interval", r.Every), zap.Int("keep", r.Keep))
	}
}

// rotateAudit seals the live audit file now (gatectl audit rotate).
func (g *Gateway) rotateAudit() (AuditRotateResult, error) {
	if g.audit == nil {
		return AuditRotateResult{}, control.Failed("no audit log: auditlog is not configured")
	}
	r, err := g.audit.w.Rotate()
	if err != nil {
		return AuditRotateResult{}, control.Failed("audit log not rotated: %v", err)
	}
	return AuditRotateResult(r), nil
}

// certAuditEvent describes a certificate in an audit record.
func certAuditEvent(typ audit.Type, outcome audit.Outcome, info certs.Info, err error) audit.Event {
	d := map[string]string{"sha256": info.FingerprintString(), "not_after": audit.FormatTime(info.NotAfter),
		"days_to_expiry": strconv.Itoa(info.DaysToExpiry)}
	if err != nil {
		d = map[string]string{"error": err.Error()}
	}
	subject := ""
	if len(info.SANs) > 0 && err == nil {
		subject = info.SANs[0]
	}
	return audit.Event{Type: typ, Outcome: outcome, Subject: audit.Subject{Source: subject}, Details: d}
}

// checkAudit checks the files auditship names (CA, client certificate and
// key) without connecting; the key and log are checked at start, since a
// missing key is generated then.
func checkAudit(cfg *config.Config) error {
	if s := cfg.Audit.Ship; s != nil && s.TLS {
		if _, err := shipTLS(s); err != nil {
			return fmt.Errorf("%w: %s: auditship: %v", config.ErrConfig, cfg.Positions["auditship"], err)
		}
	}
	return nil
}
