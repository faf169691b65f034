// Package report holds what a running gateway tells its operators: the data
// behind `gatectl status|sources|clients|serverstats|keys|cert` and the
// Prometheus metrics. Both read the same snapshots, so the control socket and
// the metrics endpoint can never disagree.
//
// The types are plain data with stable JSON names (they are the control
// protocol's payloads). Durations are float64 seconds and frequencies ppm, as
// in chronyc's CSV output, so scripts need no unit parsing.
package report

import (
	"context"
	"time"
)

// Reporter is implemented by the gateway. Every method is safe to call from
// any goroutine and cheap enough to serve a scrape every second; none may
// block the packet path.
type Reporter interface {
	Status() Status
	// Sources asks the upstream engine's loop for its view; ctx bounds the
	// wait when the loop is busy.
	Sources(ctx context.Context) ([]Source, error)
	ServerStats() ServerStats
	// Clients returns at most n of the busiest client prefixes.
	Clients(n int) Clients
	KeyRing() KeyRing
	// Cert describes the NTS-KE certificate in use; ok is false when NTS-KE
	// is off.
	Cert() (c Cert, ok bool)
}

// Sync states of the served clock, as `status` words them.
const (
	StateSynchronised   = "synchronised"
	StateHoldover       = "holdover"
	StateLocal          = "local"          // unsynchronised, serving `local stratum N`
	StateUnsynchronised = "unsynchronised" // leap 3, stratum 16
)

// Status is chronyc's `tracking`: what is served and why.
type Status struct {
	State        string `json:"state"`
	Synchronised bool   `json:"synchronised"`
	// Reason says in words why the clock is not synchronised (or holds
	// over); empty when synchronised. ReasonCode is the stratum-16 refid.
	Reason     string `json:"reason,omitempty"`
	ReasonCode string `json:"reason_code,omitempty"`
	Stratum    uint8  `json:"stratum"`
	// RefID is printed as chronyc does: dotted quad, or the ASCII kiss.
	RefID      string    `json:"refid"`
	SystemPeer string    `json:"system_peer,omitempty"`
	RefTime    time.Time `json:"ref_time"`
	Leap       string    `json:"leap"`
	// Offset is served time minus system time (the soft clock's
	// correction); Frequency its rate in ppm.
	Offset       float64 `json:"offset_s"`
	FrequencyPPM float64 `json:"frequency_ppm"`
	// EstimateOffset is the last combined estimate (selection, clustering and
	// combining over the sources' filtered offsets): the sources' time minus system
	// time, what Offset converges on. Zero before the first.
	EstimateOffset float64 `json:"estimate_offset_s"`
	// DriftPPM is the soft clock's frequency estimate without any slew in
	// progress, and SkewPPM its uncertainty: what the drift file keeps.
	DriftPPM       float64 `json:"drift_ppm"`
	SkewPPM        float64 `json:"skew_ppm"`
	RootDelay      float64 `json:"root_delay_s"`
	RootDispersion float64 `json:"root_dispersion_s"`
	RootDistance   float64 `json:"root_distance_s"`
	// SinceEstimate is the age of the last accepted estimate (the holdover
	// age while holding over); negative before the first.
	SinceEstimate float64 `json:"since_estimate_s"`
	Truechimers   int     `json:"truechimers"`
	Sources       int     `json:"sources"`
	MinSources    int     `json:"min_sources"`

	Version      string    `json:"version"`
	Started      time.Time `json:"started"`
	Uptime       float64   `json:"uptime_s"`
	ConfigFile   string    `json:"config_file"`
	ConfigLoaded time.Time `json:"config_loaded"`
	// LeapTable is the leap-second table's file (leapsectz, leapfile);
	// empty without one. LeapTableExpires is zero when the file does not
	// say (TZif); an expired table is used only where the vote is silent.
	LeapTable        string    `json:"leap_table,omitempty"`
	LeapTableEntries int       `json:"leap_table_entries,omitempty"`
	LeapTableExpires time.Time `json:"leap_table_expires,omitzero"`
	LeapTableExpired bool      `json:"leap_table_expired,omitempty"`
	Warnings         []string  `json:"warnings,omitempty"`
	// Audit is the audit trail; nil without `auditlog`.
	Audit *AuditStatus `json:"audit,omitempty"`
}

// AuditStatus is the audit trail's local log (`auditlog`, `auditrotate`).
type AuditStatus struct {
	File    string `json:"file"`
	LastSeq uint64 `json:"last_seq"`
	// Segments are the sealed files beside the live one; DiskBytes is the
	// size of the live file and the segments together.
	Segments  int   `json:"segments"`
	DiskBytes int64 `json:"disk_bytes"`
	// DroppedTotal counts events lost since start (a full queue, a failed
	// write); each loss is also recorded in the log once it can be.
	DroppedTotal uint64 `json:"dropped_total"`
	// WriteFailing: the last write failed, so events are being lost; the
	// next write that reaches the disk clears it. LastWriteError is the
	// latest failure, kept after that.
	WriteFailing   bool   `json:"write_failing"`
	LastWriteError string `json:"last_write_error,omitempty"`
	// RotateError is why the last rotation failed (the live file keeps
	// growing until one succeeds); empty after a success.
	RotateError string `json:"rotate_error,omitempty"`
	// Shipping is nil without `auditship`.
	Shipping *AuditShipping `json:"shipping,omitempty"`
}

// AuditShipping is the delivery of the audit log to its collector
// (`auditship`).
type AuditShipping struct {
	Target    string `json:"target"` // relp://host:port or tls://host:port
	Connected bool   `json:"connected"`
	// AckedSeq is the last record the collector has (acknowledged over
	// RELP, delivered and held 2 s over TLS).
	AckedSeq uint64 `json:"acked_seq"`
	// BacklogBytes is what is not delivered yet; past SpoolMax the alarm
	// is on until it falls under half of it.
	BacklogBytes int64 `json:"backlog_bytes"`
	SpoolMax     int64 `json:"spool_max_bytes"`
	Alarm        bool  `json:"alarm"`
	// Skipped are records drop-oldest gave up shipping (still in the
	// local file).
	Skipped uint64 `json:"skipped_records"`
	// Reconnects counts sessions that could not be opened or ended, each
	// followed by another attempt; LastError is the latest one's error,
	// kept while connected again.
	Reconnects uint64 `json:"reconnects"`
	LastError  string `json:"last_error,omitempty"`
	// Since is when Connected last changed (or shipping started).
	Since time.Time `json:"since"`
}

// Source states, most important first: `sources` shows one per upstream.
const (
	SourceSelected      = "selected"        // the system peer
	SourceCombined      = "combined"        // a survivor combined into the estimate
	SourceCandidate     = "candidate"       // truechimer not among the survivors
	SourceFalseticker   = "falseticker"     // outside the majority's intersection
	SourceTooFar        = "too-far"         // root distance above maxdistance
	SourceUnauth        = "unauthenticated" // authselectmode keeps it out
	SourceNotSelectable = "unselectable"    // stratum, leap or the server's own state keep it out
	SourceUnreachable   = "unreachable"     // no usable sample (reach 0 or filter empty)
	SourceKEFailing     = "ke-failing"      // NTS-KE keeps failing
	SourceResolving     = "resolving"       // host name not resolved yet
	SourceStopped       = "stopped"         // demobilised (DENY/RSTR kiss, ...)
	SourceInit          = "init"            // polling, no sample yet
)

// Source is one upstream association: chronyc's `sources -v`, `sourcestats`
// and `authdata` in one row.
type Source struct {
	ID      uint64 `json:"id"`
	Name    string `json:"name"` // the server/pool line's host
	Address string `json:"address,omitempty"`
	// KEAddress is the NTS-KE server of one address of an NTS pool
	// (`pool NAME nts`): each address has its own NTS-KE, and the NTP
	// address (Address) is known only once that succeeds.
	KEAddress string `json:"ke_address,omitempty"`
	State     string `json:"state"`
	Why       string `json:"why,omitempty"`
	// Auth is "nts", "key" or "none".
	Auth    string  `json:"auth"`
	KeyID   uint32  `json:"key_id,omitempty"`
	KeyType string  `json:"key_type,omitempty"`
	Cookies int     `json:"cookies,omitempty"`
	SinceKE float64 `json:"since_ke_s,omitempty"` // negative: no KE yet
	KEError string  `json:"ke_error,omitempty"`
	Stratum uint8   `json:"stratum"`
	Poll    int8    `json:"poll"`
	Reach   uint8   `json:"reach"`
	SinceRx float64 `json:"since_rx_s"` // negative: nothing received
	// Offset and Delay are the clock filter's output (the sample in use);
	// LastOffset and LastDelay the latest sample as measured (chronyc sources'
	// "Last sample").
	Offset        float64 `json:"offset_s"`
	Delay         float64 `json:"delay_s"`
	LastOffset    float64 `json:"last_offset_s"`
	LastDelay     float64 `json:"last_delay_s"`
	Jitter        float64 `json:"jitter_s"`
	Dispersion    float64 `json:"dispersion_s"`
	RootDistance  float64 `json:"root_distance_s"`
	Samples       int     `json:"samples"`
	Sent          uint64  `json:"sent"`
	Received      uint64  `json:"received"`
	Rejected      uint64  `json:"rejected"`
	Kisses        uint64  `json:"kisses"`
	Authenticated bool    `json:"authenticated"`
	// XLeave: the server line asks for interleaved mode (RFC 9769);
	// Interleaved: the latest reply used was interleaved (chronyc ntpdata's
	// "Interleaved"), Mode says the same in a word: interleaved or basic.
	XLeave      bool   `json:"xleave,omitempty"`
	Interleaved bool   `json:"interleaved"`
	Mode        string `json:"mode"`
}

// ServerStats is chronyc's `serverstats`, per protocol and verdict.
type ServerStats struct {
	NTP  NTPStats  `json:"ntp"`
	KE   KEStats   `json:"nts_ke"`
	Rate RateStats `json:"ratelimit"`
}

// NTPStats counts requests and what was done with them.
type NTPStats struct {
	Received uint64 `json:"received"`
	// ByMode counts received datagrams by NTP mode name, dropped ones
	// included (control and private are the scanners' amplifier probes).
	ByMode  map[string]uint64 `json:"received_by_mode"`
	Replied uint64            `json:"replied"`
	// Answered counts replies (KoD included) by authentication: none, key,
	// nts.
	Answered map[string]uint64 `json:"answered_by_auth"`
	// Dropped counts requests answered with nothing, by reason.
	Dropped    map[string]uint64 `json:"dropped"`
	KoD        map[string]uint64 `json:"kod"` // RATE, DENY, RSTR
	NTSNAK     uint64            `json:"nts_nak"`
	Leaked     uint64            `json:"leaked"`
	SendErrors uint64            `json:"send_errors"`
	// KernelDrops counts requests the kernel dropped before timegate read
	// them, a worker socket's receive buffer being full (`ntprcvbuf`);
	// they are not in Received. Linux only (SO_MEMINFO).
	KernelDrops uint64 `json:"kernel_drops"`
	// Interleaved counts replies sent in interleaved mode (chronyc
	// serverstats' "Interleaved NTP packets"); TxStamps the kernel
	// transmit timestamps kept for them; Timestamps and TimestampCapacity
	// are the interleaved table's entries in use and its fixed size
	// ("NTP timestamps held").
	Interleaved       uint64 `json:"interleaved"`
	TxStamps          uint64 `json:"kernel_tx_stamps"`
	Timestamps        int    `json:"timestamps_held"`
	TimestampCapacity int    `json:"timestamps_capacity"`
	// TxLeadNS is the transmit lead added to basic replies' transmit
	// timestamps (the time a send takes from the clock read to the
	// kernel's transmit stamp, the largest of the workers'), learned from
	// LeadProbes kernel stamps; 0 until learned.
	TxLeadNS   int64  `json:"tx_lead_ns"`
	LeadProbes uint64 `json:"tx_lead_probes"`
	// TxLeadLagNS and TxLeadCostNS are what that lead was made of: the
	// probes' lag (clock read to kernel stamp) and the cost of asking for
	// the stamp taken off it (at most a quarter of the lag).
	TxLeadLagNS  int64 `json:"tx_lead_lag_ns"`
	TxLeadCostNS int64 `json:"tx_lead_cost_ns"`
}

// KEStats counts NTS-KE connections and their outcomes.
type KEStats struct {
	Accepted uint64 `json:"accepted"`
	Active   uint64 `json:"active"`
	Served   uint64 `json:"served"`
	// Refused are connections closed before TLS: by cap or rate limit.
	Refused map[string]uint64 `json:"refused"`
	// Failed are sessions that did not end with keys, by reason.
	Failed map[string]uint64 `json:"failed"`
	// Helpers is how many processes serve NTS-KE (ntsprocesses; 0: this
	// one), and HelperRestarts how often one ended while serving and was
	// started again.
	Helpers        int    `json:"helpers"`
	HelperRestarts uint64 `json:"helper_restarts"`
	// HelperFailuresLost are failed sessions a helper could not pass on to
	// the audit trail's episodes because the parent read them slower than
	// they came (they are still in the counters above).
	HelperFailuresLost uint64 `json:"helper_failures_lost"`
}

// RateStats describe the rate tables (NTP and NTS-KE).
type RateStats struct {
	NTP RateTable  `json:"ntp"`
	KE  *RateTable `json:"nts_ke,omitempty"`
}

// RateTable is one fixed-memory rate table.
type RateTable struct {
	Enabled   bool   `json:"enabled"`
	Entries   int    `json:"entries"`
	Capacity  int    `json:"capacity"`
	Evictions uint64 `json:"evictions"`
}

// Clients lists the busiest client prefixes seen by the rate table.
type Clients struct {
	// Tracked is how many prefixes the table holds; Rows the busiest of
	// them, most requests first.
	Tracked int      `json:"tracked"`
	Rows    []Client `json:"clients"`
}

// Client is one prefix (a /32 or /64 by default) of the rate table.
type Client struct {
	Prefix   string  `json:"prefix"`
	Requests uint64  `json:"requests"`
	Limited  uint64  `json:"limited"`
	SinceRx  float64 `json:"since_rx_s"`
}

// KeyRing is the NTS cookie key ring.
type KeyRing struct {
	Keys []Key `json:"keys"`
	// RotateEvery is ntsrotate in seconds (0: only by hand).
	RotateEvery float64   `json:"rotate_every_s"`
	NextRotate  time.Time `json:"next_rotate,omitzero"`
	File        string    `json:"file"`
	// Follow: the ring file is rotated by another gateway (an NTS-KE host)
	// and re-read here (`ntsport 0`).
	Follow bool `json:"follow,omitempty"`
	// Fleet is set when the keys come from a fleet's etcd store.
	Fleet *Fleet `json:"fleet,omitempty"`
}

// Fleet is the state of a fleet key store (`ntskeystore`).
type Fleet struct {
	Prefix    string    `json:"prefix"`
	Endpoints []string  `json:"endpoints"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`     // of the last connect or disconnect
	LastSync  time.Time `json:"last_sync,omitzero"` // last good answer from etcd
	LastError string    `json:"last_error,omitempty"`
	Refused   uint64    `json:"refused_entries"`
	Published uint64    `json:"published_rotations"`
	Delay     float64   `json:"delay_s"`
	Grace     float64   `json:"grace_s"`
	NextEvent time.Time `json:"next_event,omitzero"`
	// Policy is when the fleet policy in service was published; zero while
	// the local file's access rules and rate limit apply.
	Policy time.Time `json:"policy_published,omitzero"`
	// Cutoff is the revocation cutoff (`keys nts prune --fleet`): keys that
	// began sealing before it, but the sealing key, are revoked. Zero: none.
	Cutoff time.Time `json:"revocation_cutoff,omitzero"`
}

// Key roles in the ring.
const (
	KeySealing = "sealing" // seals new cookies (and opens)
	KeyNext    = "next"    // pre-made, saved, opens; seals after the next rotation
	KeyOpening = "opening" // opens cookies sealed before a rotation
)

// Key is one cookie master key; the secret never leaves the daemon.
type Key struct {
	ID      string    `json:"id"`
	Role    string    `json:"role"`
	Created time.Time `json:"created"`
	Age     float64   `json:"age_s"`
	// Seals is when a fleet key starts (or started) sealing.
	Seals time.Time `json:"seals_from,omitzero"`
}

// Cert describes the NTS-KE certificate chain in use.
type Cert struct {
	CertFile    string    `json:"cert_file"`
	KeyFile     string    `json:"key_file"`
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	DNSNames    []string  `json:"dns_names,omitempty"`
	IPAddresses []string  `json:"ip_addresses,omitempty"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	ExpiresIn   float64   `json:"expires_in_s"`
	KeyType     string    `json:"key_type"`
	SHA256      string    `json:"sha256"` // fingerprint of the leaf, hex
	ChainLength int       `json:"chain_length"`
	SelfSigned  bool      `json:"self_signed"`
	Loaded      time.Time `json:"loaded"`
}
