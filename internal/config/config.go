// Package config reads timegate's configuration: one directive per line in
// the style of chrony.conf (chrony's directive names and syntax wherever
// chrony has the concept, ntpd's for restrict), so operators bring what they
// know. Every error names the file, line and directive, unknown directives
// are errors, and all problems are reported at once.
package config

import (
	"fmt"
	"net/netip"
	"time"

	"timegate/policy"
)

// Position is where a directive was read.
type Position struct {
	File string
	Line int
}

func (p Position) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Config is the parsed configuration. The zero value is not useful; start
// from Defaults or Parse, which fills defaults for what a file leaves out.
type Config struct {
	// Port is the NTP UDP port (chrony `port`); 0 disables NTP service.
	Port int
	// NTSPort is the NTS-KE TCP port (chrony `ntsport`); 0 disables NTS-KE.
	NTSPort int
	// BindAddresses are the local addresses served (chrony `bindaddress`);
	// empty means every address, IPv4 and IPv6.
	BindAddresses []netip.Addr
	// Local, when set, serves the local clock at this stratum while no
	// upstream is usable (chrony `local stratum N`).
	Local *Local

	KeyFile         string   // symmetric keys (chrony `keyfile`)
	NTSServerCert   string   // chrony `ntsservercert`
	NTSServerKey    string   // chrony `ntsserverkey`
	NTSTrustedCerts []string // chrony `ntstrustedcerts`: CA files for upstream NTS-KE
	NTSDumpDir      string   // chrony `ntsdumpdir`: where the NTS key ring is kept
	NTSRotate       time.Duration
	NTSNTPServer    string // chrony `ntsntpserver`: NTP host named in NTS-KE replies

	RateLimit      RateLimit // chrony `ratelimit` (NTP)
	NTSRateLimit   RateLimit // chrony `ntsratelimit` (NTS-KE connections)
	ClientLogLimit int64     // chrony `clientloglimit`: bytes for the rate-limit table

	Sources        []Source
	MinSources     int           // chrony `minsources`
	MaxDistance    time.Duration // chrony `maxdistance`
	AuthSelectMode string        // chrony `authselectmode`
	Holdover       time.Duration // timegate `holdover`: serve without sources this long
	// ClockControl makes timegate discipline the system clock through
	// adjtimex (timegate `clockcontrol on`); off by default.
	ClockControl bool

	Restrict []Restrict // ntpd `restrict`, parsed by package policy

	// ControlSocket is the control socket's path (chrony `bindcmdaddress`);
	// empty means DefaultControlSocket. ControlOff is `bindcmdaddress /`.
	ControlSocket string
	ControlOff    bool
	// User is who timegate runs as after binding its sockets (chrony
	// `user`); empty means the user "timegate" when started as root and that
	// user exists.
	User string
	// ControlGroup may use the control socket besides root and the daemon's
	// user (timegate `cmdgroup`); empty means the group "timegate" if it
	// exists.
	ControlGroup string

	// Metrics is where Prometheus metrics, /healthz and /readyz are served
	// over HTTP (timegate `metrics ADDR:PORT`); the zero value is off.
	Metrics netip.AddrPort
	Audit   Audit // the audit trail (auditlog, auditkey, auditship, ...)

	// Positions records where each single-valued directive was set, so that
	// later checks (a missing certificate file, say) can name the line.
	Positions map[string]Position
}

// Local is `local [stratum N] [orphan]`.
type Local struct {
	Stratum int
	Orphan  bool
}

// RateLimit is chrony's `ratelimit interval I burst B leak L`, plus
// timegate's `kod` (answer over-limit clients with a RATE kiss instead of
// silence) and the prefix lengths by which sources are aggregated.
type RateLimit struct {
	Enabled  bool
	Interval int // log2 of the mean seconds between requests
	Burst    int
	Leak     int // over-limit requests answered 1 in 2^Leak
	KoD      bool
	Prefix4  int
	Prefix6  int
}

// Source is a `server` or `pool` line.
type Source struct {
	Pos     Position
	Host    string
	Pool    bool
	NTS     bool
	KeyID   uint32
	IBurst  bool
	Prefer  bool
	MinPoll int
	MaxPoll int
	Port    int
	NTSPort int
}

// Restrict is one `restrict` line, parsed by package policy.
type Restrict struct {
	Pos  Position
	Args []string
	Rule policy.Rule
}

// Default values. Unprivileged ports let timegate run as any user on a fresh
// machine; see README for serving on 123.
const (
	DefaultPort        = 1123
	DefaultNTSPort     = 4460
	DefaultMinSources  = 3
	DefaultMaxDistance = 3 * time.Second // chrony's default maxdistance
	DefaultNTSRotate   = 24 * time.Hour
	DefaultHoldover    = time.Hour
	// DefaultClientLogLimit matches chrony's default (524288 bytes).
	DefaultClientLogLimit = 512 * 1024
)

// Defaults returns the configuration used when a file says nothing.
func Defaults() *Config {
	return &Config{
		Port:           DefaultPort,
		NTSPort:        DefaultNTSPort,
		NTSRotate:      DefaultNTSRotate,
		RateLimit:      RateLimit{Enabled: true, Interval: 3, Burst: 8, Leak: 2, Prefix4: 32, Prefix6: 64},
		NTSRateLimit:   RateLimit{Enabled: true, Interval: 6, Burst: 8, Leak: 2, Prefix4: 32, Prefix6: 64},
		ClientLogLimit: DefaultClientLogLimit,
		MinSources:     DefaultMinSources,
		MaxDistance:    DefaultMaxDistance,
		AuthSelectMode: "require",
		Holdover:       DefaultHoldover,
		Audit:          defaultAudit(),
		Positions:      map[string]Position{},
	}
}
