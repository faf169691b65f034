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
	// File is the name of the main configuration file, as given to Parse.
	File string
	// Port is the NTP UDP port (chrony `port`); 0 disables NTP service.
	Port int
	// NTSPort is the NTS-KE TCP port (chrony `ntsport`); 0 disables NTS-KE.
	NTSPort int
	// NTPWorkers is how many sockets (SO_REUSEPORT), each read by its own
	// goroutine, serve NTP on each address; 0 means one per CPU
	// (GOMAXPROCS). timegate's `ntpworkers`; chrony has no equivalent.
	NTPWorkers int
	// NTPRcvBuf is each NTP socket's receive buffer in bytes, as SO_RCVBUF
	// takes it (`ntprcvbuf`, after unbound's so-rcvbuf; chrony has none);
	// 0 leaves the kernel's default.
	NTPRcvBuf int
	// NTSKENice, when positive, is the nice value of NTS-KE: of the helper
	// processes (NTSProcesses > 0), or else of OS threads of their own for
	// the sessions, with each NTP worker on a thread of its own and
	// GOMAXPROCS at least one more than the workers (Linux), so that TLS
	// handshakes yield the CPU to NTP. timegate's `ntskenice`; 0: off.
	NTSKENice int
	// NTSKEIdle runs the NTS-KE helper processes in SCHED_IDLE
	// (`ntskenice idle`, the default); NTSKENice is then 0.
	NTSKEIdle bool
	// BindAddresses are the local addresses served (chrony `bindaddress`);
	// empty means every address, IPv4 and IPv6.
	BindAddresses []netip.Addr
	// Local, when set, serves the local clock at this stratum while no
	// upstream is usable (chrony `local stratum N`).
	Local *Local
	// Leap is the leap-second table, mode and smoothing port.
	Leap Leap

	KeyFile         string   // symmetric keys (chrony `keyfile`)
	NTSServerCert   string   // chrony `ntsservercert`
	NTSServerKey    string   // chrony `ntsserverkey`
	NTSTrustedCerts []string // chrony `ntstrustedcerts`: CA files for upstream NTS-KE
	NoSystemCert    bool     // chrony `nosystemcert`: trust only NTSTrustedCerts
	// NTSAEADs is chrony's `ntsaeads`: the AEADs for NTS on the NTP path in
	// order of preference, as the server chooses and as the client offers;
	// nil: 30 (AES-128-GCM-SIV), then 15 (AES-SIV-CMAC-256).
	NTSAEADs     []uint16
	NTSDumpDir   string // chrony `ntsdumpdir`: where the NTS key ring is kept
	NTSRotate    time.Duration
	NTSNTPServer string // chrony `ntsntpserver`: NTP host named in NTS-KE replies
	// NTSNTPPort is the NTP port NTS-KE replies announce (`ntsntpserver HOST
	// port N`, timegate's addition); 0 means this host's own `port`.
	NTSNTPPort int
	// NTSKeyStore, when set, takes the NTS cookie keys from a fleet's
	// shared store instead of the local ring file (`ntskeystore`).
	NTSKeyStore *KeyStore

	// MaxNTSConnections caps concurrent NTS-KE sessions (chrony
	// `maxntsconnections`); 0: the listener's default (256).
	MaxNTSConnections int
	// NTSProcesses is how many helper processes serve NTS-KE (chrony
	// `ntsprocesses`, default 1); 0 serves it in the daemon's process.
	NTSProcesses int

	RateLimit      RateLimit // chrony `ratelimit` (NTP)
	NTSRateLimit   RateLimit // chrony `ntsratelimit` (NTS-KE connections)
	ClientLogLimit int64     // chrony `clientloglimit`: bytes for the rate-limit table

	Sources        []Source
	MinSources     int           // chrony `minsources`
	MaxDistance    time.Duration // chrony `maxdistance`
	AuthSelectMode string        // chrony `authselectmode`
	Holdover       time.Duration // timegate `holdover`: serve without sources this long
	// MaxStartOffset (timegate `maxstartoffset`): the largest start-up step
	// one source alone may make the served clock take; 0 is no limit.
	MaxStartOffset time.Duration
	// MaxChange (chrony `maxchange`): estimates further than this from the
	// served time are refused; 0 is the soft clock's default (1000 s).
	MaxChange time.Duration
	// CMACOnly (timegate `keytypes cmac`): the keys file may hold AES-CMAC
	// keys only; MD5, SHA-1 and the other digests are refused.
	CMACOnly bool
	// PIDFile is where the process ID is written once the sockets are bound
	// (chrony and ntpd `pidfile`); "" writes none.
	PIDFile string
	// DriftFile keeps the soft clock's frequency estimate across restarts
	// (chrony `driftfile`, in timegate's own format: see upstream.Drift);
	// "" keeps none.
	DriftFile string
	// DumpDir keeps each source's clock filter across restarts (chrony
	// `dumpdir`; written at the clean stop, read and removed at start).
	DumpDir string
	// LogDir and Log are chrony's `logdir` and `log`: which log files are
	// written where (LogFiles).
	LogDir string
	Log    LogFiles
	// MakeStep is chrony's `makestep`; the zero value keeps timegate's rule.
	MakeStep MakeStep
	// TxLead moves basic replies' transmit timestamps to when the reply
	// reaches the device, by the send time each worker learns from kernel
	// transmit stamps (`txlead`, timegate's own; on by default; off serves
	// the clock read before the send, as chronyd does).
	TxLead bool
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
	// TrustedKeys, when not nil, are the only key IDs of KeyFile that
	// authenticate, in either direction (ntpd `trustedkey`); nil: all of them.
	TrustedKeys []uint32

	// Positions records where each single-valued directive was set, so that
	// later checks (a missing certificate file, say) can name the line.
	Positions map[string]Position

	// Warnings are the lines accepted without the effect they have in chrony
	// or ntpd, each saying why; timegate logs every one once at start-up and
	// -check-config prints them.
	Warnings []Warning
}

// Warning is one accepted line that does not do here what it does in chrony
// or ntpd.
type Warning struct {
	Pos       Position
	Directive string
	Msg       string
}

func (w Warning) String() string { return fmt.Sprintf("%s: %s: %s", w.Pos, w.Directive, w.Msg) }

// Local is `local [stratum N] [orphan] [distance D]` (or ntpd's `server
// 127.127.1.0` with `fudge 127.127.1.0 stratum N`). ntpd's `tos orphan` is
// refused rather than ignored; chrony's `orphan` is Orphan.
type Local struct {
	Stratum int
	// Distance: the local clock takes over once the held-over root
	// distance exceeds it (chrony's `local distance`).
	Distance time.Duration
	// Orphan: chrony's orphan mode; sources at stratum ≥ Stratum are
	// orphans, followed only as chrony does (internal/engine/orphan.go).
	Orphan bool
}

// DefaultLocalDistance is chrony's default `local distance`.
const DefaultLocalDistance = time.Second

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
	// MaxDelay, when not zero, discards samples with a longer round trip
	// (chrony `maxdelay`).
	MaxDelay time.Duration
	// Version is the NTP version of requests (chrony/ntpd `version`); 0:
	// 4, or 3 for keys whose digest NTPv4 cannot carry whole.
	Version int
	// MaxSources is how many addresses a pool contributes (chrony
	// `maxsources`, default 4).
	MaxSources int
	// Trust and Require are chrony's selection options: a trusted source can
	// be outvoted only by other trusted sources; while any source is
	// required, one of them must be among the agreeing sources.
	Trust, Require bool
	// XLeave asks the source for interleaved mode (chrony `xleave`, RFC
	// 9769); basic mode is used while it does not answer interleaved.
	XLeave bool
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
	// DefaultNTPRcvBuf is 4 MiB per NTP socket. Measured on loopback
	// (BENCHMARKS.md, "Receive buffer"), a 48-octet request takes 832
	// bytes of buffer, and Linux doubles the value set (half for its
	// bookkeeping): 4 MiB queues 10,082 requests, about 28 ms of a
	// worker's peak rate and 150 ms at the highest rate it answered
	// without loss, where the kernel's usual default (rmem_default,
	// 212,992 bytes, not doubled) queues 256, under a millisecond. A
	// worker taken off its core for tens of milliseconds (a VM's steal,
	// softirq work) then loses nothing at rates it can answer. The
	// queueing a full buffer adds does not move served time: a request's
	// receive timestamp is the kernel's, taken before it queues. unbound's
	// documentation suggests the same figure for so-rcvbuf.
	DefaultNTPRcvBuf = 4 << 20

	// DefaultNTSProcesses is chrony's default: one helper process serves
	// NTS-KE, so that the kernel, which preempts it when an NTP request
	// arrives, decides between handshakes and NTP (BENCHMARKS.md, "NTP
	// beside NTS-KE"). MaxNTSProcesses bounds the directive: beyond the
	// machine's cores more helpers only cost memory.
	DefaultNTSProcesses = 1
	MaxNTSProcesses     = 64
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
		NTPRcvBuf:      DefaultNTPRcvBuf,
		NTSProcesses:   DefaultNTSProcesses,
		NTSKEIdle:      true,
		TxLead:         true,
		MinSources:     DefaultMinSources,
		MaxDistance:    DefaultMaxDistance,
		AuthSelectMode: "require",
		Holdover:       DefaultHoldover,
		Audit:          defaultAudit(),
		Positions:      map[string]Position{},
	}
}
