// Package audit is the edge of timegate's audit trail: the writer that
// appends chained, checkpointed records to the local file, the shipper that
// delivers them to rsyslog over RELP or syslog-over-TLS, the key file, and
// the lock-free hand-off that turns per-packet refusals into per-source
// episodes off the hot path. The record format and all cryptography are in
// the pure package timegate/audit.
package audit

import "timegate/audit"

// Recorder takes audit events. It is the interface other components (the
// control server, the gateway, the shipper itself) call.
//
// Record must not block and must not fail: it hands the event to a bounded
// queue and returns. When the queue is full the event is counted and an
// audit.dropped record with the count is written as soon as there is room,
// so a loss is itself on the record. Record is safe for concurrent use and
// may be called after the writer has closed (the event is then counted as
// dropped). Events must not be produced per packet: use Episodes.
type Recorder interface {
	Record(audit.Event)
}

// Nop is the Recorder used when no audit log is configured.
type Nop struct{}

// Record discards e.
func (Nop) Record(audit.Event) {}
