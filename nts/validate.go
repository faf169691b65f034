package nts

import (
	"encoding/binary"
	"net/netip"
)

// Bits for the "at most one of each singular record" rule (RFC 8915 §4.1:
// only New Cookie may repeat). Indexed by RecordType, which is < 8 here.
type seenSet uint8

func (s *seenSet) add(t RecordType) bool {
	bit := seenSet(1) << t
	dup := *s&bit != 0
	*s |= bit
	return !dup
}

func (s seenSet) has(t RecordType) bool { return s&(seenSet(1)<<t) != 0 }

// checkBody applies the per-type body rules that hold in both directions.
func checkBody(r Record) error {
	n := len(r.Body)
	switch r.Type {
	case RecEndOfMessage: // §4.1.1: critical, empty
		if !r.Critical {
			return ErrCriticalBit
		}
		if n != 0 {
			return ErrBodyLength
		}
	case RecNextProtocol: // §4.1.2: critical, list of 16-bit ids
		if !r.Critical {
			return ErrCriticalBit
		}
		if n%2 != 0 {
			return ErrBodyLength
		}
	case RecAEAD: // §4.1.5: list of 16-bit ids
		if n%2 != 0 {
			return ErrBodyLength
		}
	case RecError, RecWarning: // §4.1.3, §4.1.4: one 16-bit code
		if n != 2 {
			return ErrBodyLength
		}
	case RecNewCookie: // §4.1.6: opaque, but it must fit an NTP request
		if n == 0 || n > MaxCookieLen {
			return ErrBodyLength
		}
	case RecServer: // §4.1.7
		if !validServerName(r.Body) {
			return ErrBadServerName
		}
	case RecPort: // §4.1.8: one 16-bit port
		if n != 2 {
			return ErrBodyLength
		}
		if binary.BigEndian.Uint16(r.Body) == 0 {
			return ErrBadPort
		}
	}
	return nil
}

func knownType(t RecordType) bool { return t <= RecPort }

// request is what Negotiate needs from a valid request.
type request struct {
	ntpv4 bool   // NTPv4 among the offered next protocols
	aeads []byte // the AEAD record's body: the client's ids, big-endian
}

// readRequest validates a server-side request (RFC 8915 §4.1) and returns
// the first problem as a *ProtocolError, as chrony does: an unknown
// critical record is code 0, anything else code 1.
func readRequest(recs []Record) (request, error) {
	var q request
	if len(recs) > MaxRequestRecords {
		return q, badRequest(ErrTooManyRecords)
	}
	if len(recs) == 0 || recs[len(recs)-1].Type != RecEndOfMessage {
		return q, badRequest(ErrNoEndOfMessage)
	}
	var seen seenSet
	for _, r := range recs {
		if err := q.add(r, &seen); err != nil {
			return q, err
		}
	}
	if !seen.has(RecNextProtocol) || (q.ntpv4 && !seen.has(RecAEAD)) {
		return q, badRequest(ErrMissingRecord)
	}
	return q, nil
}

func (q *request) add(r Record, seen *seenSet) error {
	if !knownType(r.Type) {
		if r.Critical {
			return &ProtocolError{Code: CodeUnrecognizedCritical, Err: ErrUnknownCritical}
		}
		return nil // §4: a non-critical unknown record MAY be ignored
	}
	if err := checkBody(r); err != nil {
		return badRequest(err)
	}
	switch r.Type {
	case RecError, RecWarning, RecNewCookie: // clients MUST NOT send these
		return badRequest(ErrUnexpectedRecord)
	}
	if !seen.add(r.Type) {
		if r.Type == RecEndOfMessage {
			return badRequest(ErrDataAfterEnd)
		}
		return badRequest(ErrDuplicateRecord)
	}
	switch r.Type {
	case RecNextProtocol:
		if len(r.Body) == 0 { // §4.1.2: a request lists at least one
			return badRequest(ErrBodyLength)
		}
		q.ntpv4 = containsID(r.Body, ProtocolNTPv4)
	case RecAEAD:
		if len(r.Body) == 0 { // §4.1.5: a request lists at least one
			return badRequest(ErrBodyLength)
		}
		q.aeads = r.Body
	}
	// Server and Port in a request state a preference that §4.1.7 and
	// §4.1.8 let us ignore; they were still validated above.
	return nil
}

// chooseAEAD picks the server's most preferred AEAD among those the client
// lists (RFC 8915 §4.1.5 leaves the choice to the server), as chrony's
// ntsaeads orders it. prefs nil means DefaultAEADs.
func chooseAEAD(list []byte, prefs []uint16) (uint16, bool) {
	if prefs == nil {
		prefs = DefaultAEADs()
	}
	for _, id := range prefs {
		if supportedAEAD(id) && containsID(list, id) {
			return id, true
		}
	}
	return 0, false
}

// DefaultAEADs returns the server's preference and the client's offer when
// none is configured: AES-128-GCM-SIV first for its shorter cookies, as
// chrony 4.4+ orders them, then the mandatory AES-SIV-CMAC-256. (A function,
// so that no package-level slice can be changed by a caller.)
func DefaultAEADs() []uint16 { return []uint16{AEADAES128GCMSIV, AEADAESSIVCMAC256} }

// supportedAEAD reports whether the NTP path implements id.
func supportedAEAD(id uint16) bool { return id == AEADAESSIVCMAC256 || id == AEADAES128GCMSIV }

// SupportedAEAD reports whether this package can use AEAD id for NTP.
func SupportedAEAD(id uint16) bool { return supportedAEAD(id) }

func containsID(list []byte, id uint16) bool {
	for i := 0; i+1 < len(list); i += 2 {
		if binary.BigEndian.Uint16(list[i:]) == id {
			return true
		}
	}
	return false
}

func badRequest(err error) error { return &ProtocolError{Code: CodeBadRequest, Err: err} }

// validServerName reports whether b is what RFC 8915 §4.1.7 allows in a
// Server Negotiation record: an IPv4 address in dotted decimal, an IPv6
// address without a zone, or an ASCII (A-label) host name.
func validServerName(b []byte) bool {
	if len(b) == 0 || len(b) > MaxServerNameLen {
		return false
	}
	if a, err := netip.ParseAddr(string(b)); err == nil {
		return a.Zone() == ""
	}
	return validHostname(b)
}

// validHostname applies the LDH rule (RFC 1123 §2.1, RFC 5890 §2.3.1): labels
// of 1-63 letters, digits and hyphens, no hyphen at either end, at most 253
// octets without the optional final dot, and a top label that is not all
// digits, so that a mistyped address is not taken for a name (RFC 3696 §2).
func validHostname(b []byte) bool {
	if b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	if len(b) == 0 || len(b) > 253 {
		return false
	}
	start, digits := 0, true
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if n := i - start; n == 0 || n > 63 || b[start] == '-' || b[i-1] == '-' {
				return false
			}
			if i == len(b) && digits {
				return false
			}
			start, digits = i+1, true
			continue
		}
		switch c := b[i]; {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
			digits = false
		default:
			return false
		}
	}
	return true
}
