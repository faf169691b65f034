package metrics

import "github.com/prometheus/client_golang/prometheus"

// descs are every metric the collector exports. Names follow the Prometheus
// conventions: a timegate_ prefix, base units (seconds, ratios), _total on
// counters, and label values from fixed sets except the source's name and
// address, which the configuration bounds.
type descs struct {
	buildInfo, synced, syncState, stratum, rootDelay, rootDisp, rootDist   *prometheus.Desc
	clockOffset, clockFreq, estimateAge, truechimers, upSources, cfgLoaded *prometheus.Desc
	cfgWarnings                                                            *prometheus.Desc

	ntpReceived, ntpRequests, ntpVerdicts, ntpAnswered, ntpKoD, ntpDropped *prometheus.Desc
	ntpNAKs, ntpLeaked, cookieOpenFailures                                 *prometheus.Desc
	ntpInterleaved, ntpTxStamps, ntpTimestamps, ntpKernelDrops             *prometheus.Desc
	ntpTxLead                                                              *prometheus.Desc

	keAccepted, keRefused, keActive, keHandshakes, keFailures, keDuration, keRestarts *prometheus.Desc

	rateEntries, rateCapacity, rateEvictions *prometheus.Desc

	srcState, srcOffset, srcDelay, srcJitter, srcRootDist, srcReach *prometheus.Desc
	srcStratum, srcPoll, srcAuthenticated, srcCookies, srcSent      *prometheus.Desc
	srcReceived                                                     *prometheus.Desc

	keys, sealingKeyAge, oldestKeyAge, nextRotation *prometheus.Desc
	fleetConnected, fleetLastSync, fleetRefused     *prometheus.Desc
	certExpiry, certLoaded                          *prometheus.Desc
	leapExpiry, leapExpired                         *prometheus.Desc

	auditSeq, auditDropped, auditFailing, auditSegments, auditDisk, auditRotateFailing *prometheus.Desc
	shipConnected, shipAcked, shipBacklog, shipLimit, shipAlarm                        *prometheus.Desc
	shipSkipped, shipReconnects, shipSince                                             *prometheus.Desc
}

// newDesc names a timegate metric.
func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("timegate_"+name, help, labels, nil)
}

func newDescs() *descs {
	x := &descs{}
	x.status()
	x.server()
	x.upstream()
	x.audit()
	return x
}

// status describes the served clock and the process (report.Status).
func (x *descs) status() {
	d := newDesc
	x.buildInfo = d("build_info", "Always 1; the version label says what is running.", "version")
	x.synced = d("synchronised", "1 while serving synchronised time (holdover included), else 0.")
	x.syncState = d("sync_state", "1 for the state the served clock is in, 0 for the others.", "state")
	x.stratum = d("stratum", "Stratum served to clients (16: unsynchronised).")
	x.rootDelay = d("root_delay_seconds", "Root delay served to clients.")
	x.rootDisp = d("root_dispersion_seconds", "Root dispersion served to clients.")
	x.rootDist = d("root_distance_seconds", "Root delay/2 + root dispersion: the served time's error bound.")
	x.clockOffset = d("clock_offset_seconds", "Served time minus system time (the soft clock's correction).")
	x.clockFreq = d("clock_frequency_adjustment_ratio", "Rate of change of the soft clock's correction (s/s; 1e-6 = 1 ppm).")
	x.estimateAge = d("estimate_age_seconds", "Time since the last accepted estimate (the holdover age while holding over).")
	x.truechimers = d("truechimers", "Sources agreeing on the time in the last selection.")
	x.upSources = d("upstream_sources", "Upstream associations.")
	x.cfgLoaded = d("config_loaded_timestamp_seconds", "When the configuration in force was loaded (Unix time).")
	x.cfgWarnings = d("config_warnings", "Warnings from the last configuration load or reload.")
}

// server describes the NTP and NTS-KE services (report.ServerStats and raw counters).
func (x *descs) server() {
	d := newDesc
	x.ntpReceived = d("ntp_datagrams_received_total", "NTP datagrams received.")
	x.ntpRequests = d("ntp_requests_total", "NTP datagrams received, by the mode their first octet claims.", "mode")
	x.ntpVerdicts = d("ntp_verdicts_total", "What was done with NTP requests.", "verdict")
	x.ntpAnswered = d("ntp_answered_total", "NTP responses sent (replies, kisses, NAKs), by the request's authentication.", "auth")
	x.ntpKoD = d("ntp_kod_total", "Kiss-o'-Death packets sent, by kiss code.", "code")
	x.ntpDropped = d("ntp_dropped_total", "NTP requests answered with nothing, by reason.", "reason")
	x.ntpKernelDrops = d("ntp_socket_drops_total", "NTP requests the kernel dropped before timegate read them, a socket's receive buffer being full (see ntprcvbuf); not in ntp_datagrams_received_total.")
	x.ntpNAKs = d("ntp_nts_naks_total", "NTS NAKs sent (RFC 8915 section 5.7).")
	x.ntpLeaked = d("ntp_ratelimit_leaked_total", "Requests over their rate limit answered anyway, so a spoofer cannot silence its victim.")
	x.ntpInterleaved = d("ntp_interleaved_total", "NTP replies sent in interleaved mode (RFC 9769).")
	x.ntpTxStamps = d("ntp_kernel_tx_stamps_total", "Kernel transmit timestamps kept for replies an interleaved request may follow.")
	x.ntpTxLead = d("ntp_tx_lead_seconds", "Transmit lead added to basic replies' transmit timestamps: the time a send takes from the clock read to the kernel's transmit stamp, learned from kernel stamps (largest of the workers; 0 until learned).")
	x.ntpTimestamps = d("ntp_interleaved_timestamps", "Entries in use in the interleaved-mode timestamp table (its size is fixed by clientloglimit).")
	x.cookieOpenFailures = d("nts_cookie_open_failures_total", "NTS requests whose cookie did not open (answered with an NTS NAK when possible).")

	x.keAccepted = d("nts_ke_connections_accepted_total", "NTS-KE connections accepted.")
	x.keRefused = d("nts_ke_connections_refused_total", "NTS-KE connections closed before TLS, by reason.", "reason")
	x.keActive = d("nts_ke_sessions_active", "NTS-KE sessions running now.")
	x.keHandshakes = d("nts_ke_handshakes_total", "NTS-KE sessions that issued keys and cookies.")
	x.keFailures = d("nts_ke_failures_total", "NTS-KE sessions that did not issue keys, by reason.", "reason")
	x.keDuration = d("nts_ke_handshake_duration_seconds", "Length of NTS-KE sessions that issued keys, accept to last record.")
	x.keRestarts = d("nts_ke_helper_restarts_total", "NTS-KE helper processes that ended while serving and were started again.")

	x.rateEntries = d("ratelimit_entries", "Sources tracked by a rate table.", "table")
	x.rateCapacity = d("ratelimit_capacity", "Entries a rate table holds (fixed memory).", "table")
	x.rateEvictions = d("ratelimit_evictions_total", "Entries evicted from a full rate table.", "table")
}

// upstream describes the sources, the key ring and the certificate.
func (x *descs) upstream() {
	d := newDesc
	x.srcState = d("source_state", "1 for the selection state of an upstream source, 0 for the others.", "source", "address", "state")
	x.srcOffset = d("source_offset_seconds", "Last filtered offset of an upstream source.", "source", "address")
	x.srcDelay = d("source_delay_seconds", "Last filtered round-trip delay of an upstream source.", "source", "address")
	x.srcJitter = d("source_jitter_seconds", "Jitter of an upstream source.", "source", "address")
	x.srcRootDist = d("source_root_distance_seconds", "Root distance of an upstream source.", "source", "address")
	x.srcReach = d("source_reach", "Reachability register of an upstream source (8 bits, 255: last 8 polls answered).", "source", "address")
	x.srcStratum = d("source_stratum", "Stratum of an upstream source.", "source", "address")
	x.srcPoll = d("source_poll_interval_seconds", "Poll interval of an upstream source.", "source", "address")
	x.srcAuthenticated = d("source_authenticated", "1 if an upstream source's last response was authenticated.", "source", "address")
	x.srcCookies = d("source_nts_cookies", "NTS cookies held for an upstream source.", "source", "address")
	x.srcSent = d("source_requests_sent_total", "Requests sent to an upstream source.", "source", "address")
	x.srcReceived = d("source_responses_received_total", "Responses received from an upstream source.", "source", "address")

	x.keys = d("nts_keys", "NTS cookie master keys in the ring, by role.", "role")
	x.sealingKeyAge = d("nts_sealing_key_age_seconds", "Age of the key sealing new cookies.")
	x.oldestKeyAge = d("nts_oldest_key_age_seconds", "Age of the oldest key still opening cookies.")
	x.nextRotation = d("nts_key_next_rotation_timestamp_seconds", "When the ring rotates by itself next (Unix time); absent when only by hand.")
	x.fleetConnected = d("nts_fleet_store_connected", "1 while the fleet's etcd key store answers, 0 while the last good ring serves without it (alert on 0).")
	x.fleetLastSync = d("nts_fleet_store_last_sync_timestamp_seconds", "When etcd last answered (Unix time).")
	x.fleetRefused = d("nts_fleet_refused_entries_total", "Fleet key entries refused: tampered, unsealed, replayed or deleted early.")
	x.leapExpiry = d("leap_table_expiry_timestamp_seconds", "Expiry of the leap-second table (Unix time); absent without a table or an expiry date.")
	x.leapExpired = d("leap_table_expired", "1 while the leap-second table has expired: leap seconds then follow the upstream vote.")
	x.certExpiry = d("nts_certificate_expiry_timestamp_seconds", "NotAfter of the NTS-KE certificate (Unix time).")
	x.certLoaded = d("nts_certificate_loaded_timestamp_seconds", "When the NTS-KE certificate in use was loaded (Unix time).")
}

// audit describes the audit trail (report.AuditStatus): what an operator
// alerts on when the trail stops being complete, on disk or at the
// collector.
func (x *descs) audit() {
	d := newDesc
	x.auditSeq = d("audit_last_seq", "Sequence number of the last record written to the audit log.")
	x.auditDropped = d("audit_dropped_events_total", "Audit events lost (queue full, failed write) since start; each loss is also recorded as audit.dropped once a write succeeds.")
	x.auditFailing = d("audit_write_failing", "1 while writes to the audit log fail and events are being lost, 0 once a write succeeds.")
	x.auditRotateFailing = d("audit_rotate_failing", "1 while the last rotation of the audit log failed (auditrotate; the live file keeps growing, retried every minute), 0 after one succeeds.")
	x.auditSegments = d("audit_segments", "Sealed audit log segments beside the live file (auditrotate).")
	x.auditDisk = d("audit_disk_bytes", "Size of the live audit log and its sealed segments.")
	x.shipConnected = d("audit_ship_connected", "1 while connected to the audit collector (auditship), else 0.")
	x.shipAcked = d("audit_ship_acked_seq", "Sequence number of the last audit record the collector has.")
	x.shipBacklog = d("audit_ship_backlog_bytes", "Audit log bytes not delivered to the collector yet.")
	x.shipLimit = d("audit_ship_backlog_limit_bytes", "Backlog limit (auditship spool): past it the alarm goes off and the overflow policy acts.")
	x.shipAlarm = d("audit_ship_alarm", "1 from when the backlog passes its limit until it is back under half of it.")
	x.shipSkipped = d("audit_ship_skipped_records_total", "Audit records given up shipping by overflow drop-oldest (they stay in the local file).")
	x.shipReconnects = d("audit_ship_reconnects_total", "Audit shipping sessions that could not be opened or ended, each followed by another attempt.")
	x.shipSince = d("audit_ship_since_timestamp_seconds", "Unix time the connection to the audit collector last came up or went down (or shipping started): with audit_ship_connected 0, time() minus this is how long delivery has stopped.")
}

// all lists the descriptors for Describe.
func (x *descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{
		x.buildInfo, x.synced, x.syncState, x.stratum, x.rootDelay, x.rootDisp, x.rootDist,
		x.clockOffset, x.clockFreq, x.estimateAge, x.truechimers, x.upSources, x.cfgLoaded, x.cfgWarnings,
		x.ntpReceived, x.ntpRequests, x.ntpVerdicts, x.ntpAnswered, x.ntpKoD, x.ntpDropped,
		x.ntpNAKs, x.ntpLeaked, x.cookieOpenFailures, x.ntpInterleaved, x.ntpTxStamps, x.ntpTimestamps, x.ntpKernelDrops, x.ntpTxLead,
		x.keAccepted, x.keRefused, x.keActive, x.keHandshakes, x.keFailures, x.keDuration, x.keRestarts,
		x.rateEntries, x.rateCapacity, x.rateEvictions,
		x.srcState, x.srcOffset, x.srcDelay, x.srcJitter, x.srcRootDist, x.srcReach,
		x.srcStratum, x.srcPoll, x.srcAuthenticated, x.srcCookies, x.srcSent, x.srcReceived,
		x.keys, x.sealingKeyAge, x.oldestKeyAge, x.nextRotation, x.certExpiry, x.certLoaded,
		x.fleetConnected, x.fleetLastSync, x.fleetRefused,
		x.leapExpiry, x.leapExpired,
		x.auditSeq, x.auditDropped, x.auditFailing, x.auditSegments, x.auditDisk, x.auditRotateFailing,
		x.shipConnected, x.shipAcked, x.shipBacklog, x.shipLimit, x.shipAlarm, x.shipSkipped, x.shipReconnects, x.shipSince,
	}
}
