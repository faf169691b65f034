package audit

import (
	"strconv"
	"strings"
)

// Syslog framing of a record, RFC 5424:
//
//	<PRI>1 TIMESTAMP HOSTNAME timegate - MSGID [timegate-audit@32473 seq="N"] JSON-LINE
//
// PRI uses facility 13 ("log audit", RFC 5424 table 1) with severity notice
// (5), or warning (4) for outcomes that are refusals or failures. TIMESTAMP
// is the record's time in microseconds (RFC 5424 §6.2.3 allows at most six
// fraction digits). MSGID is the event type. The structured-data element
// repeats seq so that a collector can de-duplicate without parsing the
// JSON; 32473 is the private enterprise number RFC 5612 reserves for
// documentation, to be replaced by a registered one. MSG is the record line
// itself, so the collector's copy can be verified like the local file.
const (
	syslogFacility = 13
	sdID           = "timegate-audit@32473"
	appName        = "timegate"
	maxHostname    = 255 // RFC 5424 §6.2.4
	maxMsgID       = 32  // RFC 5424 §6.2.7
)

// SyslogMessage builds the RFC 5424 message for a record line; hostname is
// this gateway's name ("-" when empty).
func SyslogMessage(dst []byte, r *Record, line []byte, hostname string) []byte {
	sev := 5
	switch r.Outcome {
	case OutcomeRejected, OutcomeDenied, OutcomeFailed, OutcomeWarning:
		sev = 4
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(syslogFacility*8+sev), 10)
	dst = append(dst, ">1 "...)
	dst = append(dst, syslogTime(r.Time)...)
	dst = append(dst, ' ')
	dst = append(dst, printable(hostname, maxHostname)...)
	dst = append(dst, " "+appName+" - "...)
	dst = append(dst, printable(string(r.Type), maxMsgID)...)
	dst = append(dst, " ["+sdID+" seq=\""...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, "\"] "...)
	return append(dst, line...)
}

// syslogTime cuts the record's nine fraction digits to six.
func syslogTime(t string) string {
	if len(t) == len(timeLayout) {
		return t[:len(t)-4] + "Z"
	}
	return t
}

// printable returns s as RFC 5424 PRINTUSASCII (33..126), at most n bytes,
// or "-" (the NILVALUE) when nothing is left.
func printable(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if c := s[i]; c >= 33 && c <= 126 {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// OctetCounted frames msg for syslog over TLS (RFC 5425 §4.3): MSG-LEN SP
// SYSLOG-MSG, which rsyslog's imtcp reads without relying on newlines.
func OctetCounted(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}
