package config

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// Audit is the audit trail's configuration (timegate's own directives;
// chrony has no audit log):
//
//	auditlog FILE [nosync]
//	auditkey FILE [ml-dsa-65|ed25519]
//	auditcheckpoint [records N] [interval SECONDS]
//	auditepisodes SECONDS
//	auditrotate [size BYTES] [interval SECONDS] [keep N]
//	auditship relp://HOST:PORT | relp+tls://HOST:PORT | tls://HOST:PORT
//	          [ca FILE] [cert FILE key FILE] [servername NAME]
//	          [spool BYTES] [overflow keep|drop-oldest]
type Audit struct {
	Log    string // empty: no audit trail
	NoSync bool
	// Key is the checkpoint signing key; empty: auditkey in the state dir.
	Key                string
	KeyAlg             string // ml-dsa-65 (default) or ed25519
	CheckpointRecords  int
	CheckpointInterval time.Duration
	EpisodeInterval    time.Duration
	// RotateSize: the live file is sealed and renamed to a segment once it
	// holds this many bytes (0: never). RotateKeep: sealed segments kept
	// (0: all); older ones are deleted, never before the shipper has
	// delivered them.
	RotateSize int64
	// RotateEvery also seals the live file at each boundary of the UTC
	// clock this long (86400: at midnight); 0: never.
	RotateEvery time.Duration
	RotateKeep  int
	Ship        *AuditShip
}

// AuditShip is the `auditship` line.
type AuditShip struct {
	Transport  string // relp or tls
	TLS        bool   // relp+tls, and always for tls
	Addr       string // host:port
	CA         string
	Cert, Key  string
	ServerName string
	SpoolMax   int64
	Overflow   string
}

// Audit defaults (see internal/audit for why).
const (
	DefaultAuditCheckpointRecords  = 1000
	DefaultAuditCheckpointInterval = time.Minute
	DefaultAuditEpisodeInterval    = 10 * time.Second
	DefaultAuditSpool              = 64 << 20
	// Rotation on by default: an audit log that only grows fills the disk
	// of a gateway that runs for years. 16 × 64 MiB bounds it to about a
	// GiB (and segments the shipper has not delivered are kept beyond it).
	DefaultAuditRotateSize = 64 << 20
	DefaultAuditRotateKeep = 16
)

func defaultAudit() Audit {
	return Audit{KeyAlg: "ml-dsa-65", CheckpointRecords: DefaultAuditCheckpointRecords,
		CheckpointInterval: DefaultAuditCheckpointInterval, EpisodeInterval: DefaultAuditEpisodeInterval,
		RotateSize: DefaultAuditRotateSize, RotateKeep: DefaultAuditRotateKeep}
}

func auditLog(p *parser, name string, args []string) {
	if len(args) < 1 || len(args) > 2 || (len(args) == 2 && args[1] != "nosync") {
		p.fail(name, "takes FILE [nosync]")
		return
	}
	p.cfg.Audit.Log, p.cfg.Audit.NoSync = args[0], len(args) == 2
}

func auditKey(p *parser, name string, args []string) {
	if len(args) < 1 || len(args) > 2 {
		p.fail(name, "takes FILE [ml-dsa-65|ed25519]")
		return
	}
	p.cfg.Audit.Key = args[0]
	if len(args) == 2 {
		switch a := strings.ToLower(args[1]); a {
		case "ml-dsa-65", "mldsa65", "ed25519":
			p.cfg.Audit.KeyAlg = a
			if a == "mldsa65" {
				p.cfg.Audit.KeyAlg = "ml-dsa-65"
			}
		default:
			p.fail(name, "algorithm must be ml-dsa-65 or ed25519, got %q", args[1])
		}
	}
}

// auditcheckpoint [records N] [interval SECONDS]
func auditCheckpoint(p *parser, name string, args []string) {
	if len(args) == 0 || len(args)%2 != 0 {
		p.fail(name, "takes records N and/or interval SECONDS")
		return
	}
	for i := 0; i < len(args); i += 2 {
		switch args[i] {
		case "records":
			// A checkpoint costs one ML-DSA signature (~5 KiB); one per
			// record would triple the file, 1e6 leaves too much unsigned.
			if v, ok := p.intArg(name+" records", "value", args[i+1], 1, 1000000); ok {
				p.cfg.Audit.CheckpointRecords = v
			}
		case "interval":
			if d, ok := p.secondsArg(name+" interval", args[i+1], 1, 86400); ok {
				p.cfg.Audit.CheckpointInterval = d
			}
		default:
			p.fail(name, "unknown option %q (want records or interval)", args[i])
		}
	}
}

func auditEpisodes(p *parser, name string, args []string) {
	if p.exactly(name, args, 1) {
		if d, ok := p.secondsArg(name, args[0], 1, 3600); ok {
			p.cfg.Audit.EpisodeInterval = d
		}
	}
}

// auditrotate [size BYTES] [interval SECONDS] [keep N]
func auditRotate(p *parser, name string, args []string) {
	if len(args) == 0 || len(args)%2 != 0 {
		p.fail(name, "takes size BYTES, interval SECONDS and/or keep N")
		return
	}
	for i := 0; i < len(args); i += 2 {
		switch v := args[i+1]; args[i] {
		case "size":
			// Under 1 MiB a busy gateway would rotate every few seconds,
			// each segment paying a checkpoint and a rename; auditship's
			// spool has the same bounds.
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || (n != 0 && (n < 1<<20 || n > 1<<40)) {
				p.fail(name+" size", "must be 0 (never rotate) or a byte count 1048576..1099511627776, got %q", v)
				continue
			}
			p.cfg.Audit.RotateSize = n
		case "interval":
			// Whole seconds from a minute to a (leap) year; 0 turns it off.
			n, err := strconv.Atoi(v)
			if err != nil || (n != 0 && (n < 60 || n > 366*86400)) {
				p.fail(name+" interval", "must be 0 (never) or whole seconds 60..31622400 (86400: daily, at midnight UTC), got %q", v)
				continue
			}
			p.cfg.Audit.RotateEvery = time.Duration(n) * time.Second
		case "keep":
			if n, ok := p.intArg(name+" keep", "value", v, 0, 100000); ok {
				p.cfg.Audit.RotateKeep = n
			}
		default:
			p.fail(name, "unknown option %q (want size, interval or keep)", args[i])
		}
	}
}

func auditShip(p *parser, name string, args []string) {
	if len(args) == 0 {
		p.fail(name, "needs relp://HOST:PORT, relp+tls://HOST:PORT or tls://HOST:PORT")
		return
	}
	s := &AuditShip{SpoolMax: DefaultAuditSpool, Overflow: "keep"}
	scheme, addr, ok := strings.Cut(args[0], "://")
	switch scheme {
	case "relp":
		s.Transport = "relp"
	case "relp+tls":
		s.Transport, s.TLS = "relp", true
	case "tls":
		s.Transport, s.TLS = "tls", true
	default:
		ok = false
	}
	host, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); !ok || err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		p.fail(name, "want relp://HOST:PORT, relp+tls://HOST:PORT or tls://HOST:PORT, got %q", args[0])
		return
	}
	s.Addr = addr
	if !auditShipOptions(p, name, s, args[1:]) {
		return
	}
	if s.TLS && s.CA == "" {
		p.fail(name, "%s needs ca FILE: the collector must be authenticated", scheme)
		return
	}
	if (s.Cert == "") != (s.Key == "") {
		p.fail(name, "cert and key must be given together")
		return
	}
	if !s.TLS && (s.CA != "" || s.Cert != "") {
		p.fail(name, "ca, cert and key need relp+tls:// or tls://")
		return
	}
	p.cfg.Audit.Ship = s
}

func auditShipOptions(p *parser, name string, s *AuditShip, args []string) bool {
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			p.fail(name, "option %q needs a value", args[i])
			return false
		}
		v := args[i+1]
		switch args[i] {
		case "ca":
			s.CA = v
		case "cert":
			s.Cert = v
		case "key":
			s.Key = v
		case "servername":
			s.ServerName = v
		case "spool":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1<<20 || n > 1<<40 {
				p.fail(name+" spool", "must be a byte count 1048576..1099511627776, got %q", v)
				return false
			}
			s.SpoolMax = n
		case "overflow":
			if v != "keep" && v != "drop-oldest" {
				p.fail(name+" overflow", "must be keep or drop-oldest, got %q", v)
				return false
			}
			s.Overflow = v
		default:
			p.fail(name, "unknown option %q", args[i])
			return false
		}
	}
	return true
}

// finishAudit checks what needs the whole file: every audit directive
// needs auditlog (the local file is the spool and the evidence).
func (p *parser) finishAudit() {
	if p.cfg.Audit.Log != "" {
		return
	}
	for _, d := range []string{"auditkey", "auditcheckpoint", "auditepisodes", "auditrotate", "auditship"} {
		if pos, ok := p.seen[d]; ok {
			p.addErr(errorAt(pos, d, "needs auditlog FILE"))
		}
	}
}

// auditDirective returns the handler of an audit directive; each may
// appear once.
func auditDirective(name string) (handler, bool) {
	switch name {
	case "auditlog":
		return handler{auditLog, true}, true
	case "auditkey":
		return handler{auditKey, true}, true
	case "auditcheckpoint":
		return handler{auditCheckpoint, true}, true
	case "auditepisodes":
		return handler{auditEpisodes, true}, true
	case "auditrotate":
		return handler{auditRotate, true}, true
	}
	return handler{auditShip, true}, true
}
