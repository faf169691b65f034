// Package engine is the edge of the upstream side: it resolves the configured servers,
// runs one upstream.Source state machine per association with real timers and sockets
// (a fresh UDP socket per request, NTS-KE over TLS 1.3), and after every event runs
// selection and the soft clock and publishes what the gateway serves.
//
// All state lives in one goroutine (Run's loop): timers, socket readers and NTS-KE
// sessions run in their own goroutines and only post events to it, so the state machines
// and the soft clock need no locks.
package engine

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
	"timegate/audit"

	"go.uber.org/zap"

	"timegate/internal/config"
	"timegate/ntp"
	"timegate/nts"
	"timegate/symkey"
	"timegate/upstream"
)

// Resolver finds the addresses of a host name; *net.Resolver fits.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer opens the per-request UDP socket (and, for NTS-KE, the TCP connection);
// *net.Dialer fits.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// KEFunc runs one NTS-KE session with addr ("host:port"); nts.Exchange with AEAD 15 is
// the default.
type KEFunc func(ctx context.Context, addr string, conf *tls.Config) (*nts.KEResult, error)

// Options configure an Engine. Sources and Publish are required.
type Options struct {
	Sources     []config.Source
	MinSources  int
	MaxDistance time.Duration
	// AuthSelectMode is chrony's authselectmode; "" means require.
	AuthSelectMode string
	// Holdover is how long to serve after the sources are lost: 0 means
	// upstream.DefaultHoldoverLimit, negative none (`holdover 0`).
	Holdover time.Duration
	// MaxStartOffset is upstream.ClockOptions.StartLimit (`maxstartoffset`).
	MaxStartOffset time.Duration
	// PanicThreshold is upstream.ClockOptions.PanicThreshold (`maxchange`).
	PanicThreshold time.Duration
	// Keys holds the symmetric keys `key ID` refers to.
	Keys *symkey.Set
	// TrustedCerts are PEM files of CAs for NTS-KE, trusted besides the system roots
	// (chrony's ntstrustedcerts).
	TrustedCerts []string
	// NoSystemCert trusts only TrustedCerts, not the system roots (chrony's
	// nosystemcert).
	NoSystemCert bool
	// AEADs are offered in NTS-KE in this order (chrony's ntsaeads); nil
	// offers nts.DefaultAEADs.
	AEADs []uint16
	// Precision is the local clock's, log2 seconds; it goes into the served header.
	Precision int8
	// Fallback is served while unsynchronised (`local stratum N`); nil serves
	// ntp.Unsynchronised.
	Fallback *ntp.ServedState
	// LocalDistance: with Fallback, the local clock is served as soon as
	// the holdover root distance exceeds it (chrony's `local distance`);
	// 0 only after the holdover limit.
	LocalDistance time.Duration
	// OrphanStratum, when not 0, is `local stratum N orphan` (orphan.go).
	OrphanStratum uint8
	// LocalRefID returns our reference ID towards a source address for
	// orphan mode; nil asks the kernel which local address it would use.
	LocalRefID func(netip.Addr) uint32
	// BuildDate: the sources are never believed about a time before it.
	BuildDate time.Time
	// Discipliner, when set (`clockcontrol on`), makes the system clock
	// follow the served clock; nil never touches it.
	Discipliner upstream.Discipliner
	// DriftFile keeps the soft clock's frequency across restarts (chrony's
	// driftfile); "" keeps none. Not used with a Discipliner.
	DriftFile string
	// DumpDir keeps every source's clock filter across restarts (chrony's
	// dumpdir); "" keeps nothing. Not used with a Discipliner.
	DumpDir string
	// LogDir and Logs are chrony's logdir and log: which log files to write where.
	LogDir string
	Logs   config.LogFiles
	// StepThreshold and StepLimit are chrony's makestep (upstream.ClockOptions);
	// zero keeps the soft clock's defaults.
	StepThreshold time.Duration
	StepLimit     int
	// Publish receives every new served state. It must not block.
	Publish func(*ntp.ServedState)
	// Leap configures leap seconds; the zero value follows the upstream
	// vote in step mode.
	Leap LeapOptions
	// Audit, when set, receives audit events (system peer changes,
	// falsetickers, failing or stopped sources, refused clock steps). It
	// must not block.
	Audit func(audit.Event)
	Log   *zap.Logger

	Now      func() time.Time // nil: time.Now
	Rand     io.Reader        // nil: crypto/rand
	Resolver Resolver         // nil: net.DefaultResolver
	Dialer   Dialer           // nil: net.Dialer
	KE       KEFunc           // nil: nts.Exchange through Dialer
}

// Engine runs the upstream associations.
type Engine struct {
	opts   Options
	log    *zap.Logger
	mode   upstream.AuthSelectMode
	tls    *tls.Config
	assocs []*assoc
	clock  *upstream.SoftClock
	sel    upstream.SelectOptions
	shown  shown // what the last selection-change log line said
	// loop is the running Run's state, for queries from other goroutines.
	loop atomic.Pointer[runner]
	// summary is what the latest publish said, for Summary.
	summary atomic.Pointer[Summary]
	lastID  uint64 // the last association ID handed out
	drift   drift  // the drift file; touched by New and then only by Run's loop
}

// Limits.
const (
	// poolSize is how many addresses of a `pool` name become associations (chrony's
	// default maxsources is 4).
	poolSize = 4
	// keTimeout bounds one NTS-KE session, connection to last record.
	keTimeout = 10 * time.Second
	// resolveTimeout bounds one name lookup; resolveRetryMin/Max space the retries of a
	// name that does not resolve.
	resolveTimeout  = 10 * time.Second
	resolveRetryMin = 4 * time.Second
	resolveRetryMax = 1024 * time.Second
)

// New checks the options and prepares every association. Configured sources that cannot
// be used (a key missing from the keyfile) or that authselectmode will never select are
// reported as warnings, not errors: the gateway still starts and serves.
func New(opts Options) (*Engine, []string, error) {
	if opts.Publish == nil {
		return nil, nil, errors.New("engine: Publish is required")
	}
	mode, err := upstream.ParseAuthSelectMode(opts.AuthSelectMode)
	if err != nil {
		return nil, nil, err
	}
	e := &Engine{opts: opts, log: opts.Log, mode: mode}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	if e.opts.Rand == nil {
		e.opts.Rand = rand.Reader
	}
	if e.tls, err = trustConfig(opts.TrustedCerts, opts.NoSystemCert); err != nil {
		return nil, nil, err
	}
	e.clock = upstream.NewSoftClock(upstream.ClockOptions{HoldoverLimit: opts.Holdover, StartLimit: opts.MaxStartOffset, BuildDate: opts.BuildDate,
		PanicThreshold: opts.PanicThreshold,
		Discipliner:    opts.Discipliner, StepThreshold: opts.StepThreshold, StepLimit: opts.StepLimit})
	e.sel = upstream.SelectOptions{MinSources: opts.MinSources, MaxDistance: opts.MaxDistance}
	warnings := e.restoreDrift(e.now())
	if opts.Logs.Any() && opts.LogDir == "" {
		warnings = append(warnings, "log: no logdir is set: no log file is written")
	}
	if opts.DumpDir != "" && opts.Discipliner != nil {
		warnings = append(warnings, "dumpdir "+opts.DumpDir+": not used with clockcontrol on: samples are measured against the uncorrected clock, which a restart resets")
	}
	for _, spec := range opts.Sources {
		a, warn := e.newAssoc(spec)
		warnings = append(warnings, warn...)
		if a != nil {
			e.assocs = append(e.assocs, a)
		}
	}
	if len(e.assocs) > 0 && !e.anySelectable() {
		warnings = append(warnings, fmt.Sprintf("no configured source can be selected under authselectmode %s: the gateway will not synchronise", mode))
	}
	return e, warnings, nil
}

// newAssoc builds the association of one server line, or explains why there is none.
func (e *Engine) newAssoc(spec config.Source) (*assoc, []string) {
	where := fmt.Sprintf("%s: server %s", spec.Pos, spec.Host)
	var auth upstream.Auth
	var warn []string
	switch {
	case spec.KeyID != 0:
		key, ok := e.lookupKey(spec.KeyID)
		if !ok {
			return nil, []string{fmt.Sprintf("%s: key %d is not in the keyfile: source not used", where, spec.KeyID)}
		}
		if key.Legacy() {
			warn = append(warn, fmt.Sprintf("%s: key %d is %v, a legacy digest: prefer AES128 or AES256 (RFC 8573)", where, spec.KeyID, key.Type()))
		}
		// NTPv3 for digests an NTPv4 MAC cannot carry whole, as chrony does, unless
		// the line says which version.
		vn := key.Type().PreferredVersion()
		if spec.Version != 0 {
			vn = uint8(spec.Version)
		}
		auth = upstream.KeyAuth{ID: spec.KeyID, Key: key, Version: vn}
	case spec.NTS:
	default:
		if !e.mode.Allows(false) {
			warn = append(warn, fmt.Sprintf("%s: not authenticated (no nts or key): authselectmode %s never selects it", where, e.mode))
		}
		auth = upstream.NoAuth{Version: uint8(spec.Version)}
	}
	a := &assoc{spec: spec, auth: auth, id: e.newID()}
	return a, warn
}

func (e *Engine) lookupKey(id uint32) (*symkey.Key, bool) {
	if e.opts.Keys == nil {
		return nil, false
	}
	return e.opts.Keys.Lookup(id)
}

// anySelectable reports whether authselectmode lets at least one association be selected.
func (e *Engine) anySelectable() bool {
	for _, a := range e.assocs {
		if e.mode.Allows(a.authenticated()) {
			return true
		}
	}
	return false
}

func (e *Engine) now() time.Time {
	if e.opts.Now != nil {
		return e.opts.Now()
	}
	return time.Now()
}

func (e *Engine) resolver() Resolver {
	if e.opts.Resolver != nil {
		return e.opts.Resolver
	}
	return net.DefaultResolver
}

func (e *Engine) dialer() Dialer {
	if e.opts.Dialer != nil {
		return e.opts.Dialer
	}
	return &net.Dialer{}
}

func (e *Engine) keFunc() KEFunc {
	if e.opts.KE != nil {
		return e.opts.KE
	}
	d := e.dialer()
	aeads := e.opts.AEADs
	if aeads == nil {
		aeads = nts.DefaultAEADs()
	}
	return func(ctx context.Context, addr string, conf *tls.Config) (*nts.KEResult, error) {
		return nts.Exchange(ctx, d, addr, conf, aeads)
	}
}
