package audit

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Type names what happened. The values are a stable interface: collectors
// filter on them.
type Type string

// Event types. Episode types aggregate many packets from one source over
// one interval into one record; nothing here is ever one record per packet.
const (
	TypeStart            Type = "gateway.start"
	TypeStop             Type = "gateway.stop"
	TypeConfigReload     Type = "config.reload"
	TypeAccessDenied     Type = "access.denied.episode"
	TypeRateLimited      Type = "ratelimit.episode"
	TypeAuthFailure      Type = "auth.failure.episode"
	TypeNTSKEFailure     Type = "ntske.failure.episode"
	TypeNTSKEHelperExit  Type = "ntske.helper.exit" // an NTS-KE helper process ended while serving (crash, kill, hang)
	TypeKeyRotate        Type = "key.rotate"
	TypeKeyImport        Type = "key.import"
	TypeKeyPrune         Type = "key.prune"
	TypeKeyRefused       Type = "key.refused" // a fleet key entry that did not authenticate, or was replayed or deleted early
	TypeCertLoad         Type = "cert.load"
	TypeCertReload       Type = "cert.reload"
	TypeCertExpiry       Type = "cert.expiry"
	TypeUpstreamSelected Type = "upstream.selected"
	TypeUpstreamFalse    Type = "upstream.falseticker"
	TypeUpstreamDown     Type = "upstream.unreachable"
	TypeUpstreamKoD      Type = "upstream.kod"
	TypeClockStepRefused Type = "clock.step.refused"
	TypeLeapTable        Type = "leap.table"  // a leap-second table loaded, refused or expired
	TypeLeapSecond       Type = "leap.second" // a leap second taken up, or an upstream vote overruled
	TypeControlCommand   Type = "control.command"
	TypeControlRefused   Type = "control.refused"
	TypeCheckpoint       Type = "audit.checkpoint"
	TypeRecovered        Type = "audit.recovered"
	TypeDropped          Type = "audit.dropped"
	TypeShipOverflow     Type = "audit.ship.overflow"
	TypeShipAlarm        Type = "audit.ship.alarm"
	// TypeSegment starts every file after a rotation: it names the segment
	// sealed before it, so that a file whose chain does not start at seq 1
	// shows where it continues from. TypeSegmentPrune records a sealed
	// segment deleted by retention (auditrotate keep).
	TypeSegment      Type = "audit.segment"
	TypeSegmentPrune Type = "audit.segment.prune"
)

// Outcome says how it ended.
type Outcome string

// Outcomes.
const (
	OutcomeOK       Outcome = "ok"
	OutcomeAccepted Outcome = "accepted"
	OutcomeRejected Outcome = "rejected"
	OutcomeDenied   Outcome = "denied"
	OutcomeFailed   Outcome = "failed"
	OutcomeWarning  Outcome = "warning"
	OutcomeSigned   Outcome = "signed"
)

// Subject is who or what the event is about; every member is optional.
type Subject struct {
	Prefix string `json:"prefix,omitempty"` // client network, e.g. 192.0.2.0/24
	Source string `json:"source,omitempty"` // upstream source or peer address
	KeyID  string `json:"key_id,omitempty"` // NTS cookie key, symmetric key or audit key
	User   string `json:"user,omitempty"`   // control-socket user (uid or name)
}

// Event is what a component reports. The writer adds seq, time and prev.
type Event struct {
	Type    Type
	Outcome Outcome
	Subject Subject
	Details map[string]string
	// Time, when set, is when the event happened (an episode's end, say);
	// zero means the moment the writer writes it.
	Time time.Time
}

// Limits on what one record may carry. They bound the memory a hostile
// file costs the verifier and keep a component bug (a huge error string)
// from producing multi-megabyte lines that a collector would truncate.
const (
	MaxDetails   = 16
	MaxStringLen = 512
	// MaxEventLen caps an ordinary record's line: with the RFC 5424 header
	// it stays under rsyslog's default maxMessageSize of 8 KiB, so no
	// record is one the collector refuses for ever (a RELP session that
	// fails on one message would stall shipping behind it). A record over
	// it keeps its type, outcome and subject and loses its details.
	MaxEventLen = 7 << 10
	// MaxLineLen is what parsers accept: an ML-DSA-65 checkpoint is about
	// 5 KiB; twice the event cap leaves room for a future field.
	MaxLineLen     = 16 << 10
	maxKeyLen      = 64
	maxTypeLen     = 64
	truncateMarker = "…"
)

// sanitized returns a copy of e with strings clipped to the limits and made
// valid UTF-8, so that the encoding is deterministic and bounded whatever a
// component passes in.
func (e Event) sanitized() Event {
	out := e
	out.Type = Type(clip(string(e.Type), maxTypeLen))
	out.Outcome = Outcome(clip(string(e.Outcome), maxTypeLen))
	out.Subject = Subject{
		Prefix: clip(e.Subject.Prefix, MaxStringLen), Source: clip(e.Subject.Source, MaxStringLen),
		KeyID: clip(e.Subject.KeyID, MaxStringLen), User: clip(e.Subject.User, MaxStringLen),
	}
	if len(e.Details) > 0 {
		out.Details = make(map[string]string, min(len(e.Details), MaxDetails))
		for k, v := range e.Details {
			if len(out.Details) == MaxDetails {
				out.Details["truncated"] = "true"
				break
			}
			out.Details[clip(k, maxKeyLen)] = clip(v, MaxStringLen)
		}
	}
	return out
}

// clip makes s valid UTF-8 of at most n bytes (plus a marker when cut).
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncateMarker
}

// ControlCommand is the record of a control-socket command: who (user:
// the peer's uid or name from SO_PEERCRED), what (command, with its
// arguments), and whether it worked (err nil or not).
func ControlCommand(user, command string, err error) Event {
	e := Event{Type: TypeControlCommand, Outcome: OutcomeOK, Subject: Subject{User: user},
		Details: map[string]string{"command": command}}
	if err != nil {
		e.Outcome = OutcomeFailed
		e.Details["error"] = err.Error()
	}
	return e
}

// ControlRefused is the record of a control-socket request refused before
// it ran (not authorised, rate limited, malformed): why says which.
func ControlRefused(user, command, why string) Event {
	return Event{Type: TypeControlRefused, Outcome: OutcomeDenied, Subject: Subject{User: user},
		Details: map[string]string{"command": command, "why": why}}
}
