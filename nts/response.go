package nts

import (
	"encoding/binary"
	"slices"
)

// response is what a client keeps from a valid NTS-KE response.
type response struct {
	aead    uint16
	cookies [][]byte // copies, not aliases of the message
	server  string   // empty: same address as the KE server (§4.1.7)
	port    uint16   // 0: DefaultNTPPort (§4.1.8)
}

// readResponse validates a response for a client that offered NTPv4 and the
// AEAD ids in offered (RFC 8915 §4.1). An Error record wins over every other
// problem, so that the client reports the server's code.
func readResponse(recs []Record, offered []uint16) (response, error) {
	var p response
	for _, r := range recs {
		if r.Type == RecError && len(r.Body) == 2 {
			code := ErrorCode(binary.BigEndian.Uint16(r.Body))
			return p, &ProtocolError{Code: code, Err: ErrPeerError}
		}
	}
	if len(recs) == 0 || recs[len(recs)-1].Type != RecEndOfMessage {
		return p, ErrNoEndOfMessage
	}
	var seen seenSet
	var protocols []byte
	aeadRecords := 0
	for _, r := range recs {
		if !knownType(r.Type) {
			if r.Critical {
				return p, ErrUnknownCritical
			}
			continue
		}
		if err := checkBody(r); err != nil {
			return p, err
		}
		if r.Type != RecNewCookie && !seen.add(r.Type) {
			return p, ErrDuplicateRecord
		}
		switch r.Type {
		case RecWarning:
			return p, ErrPeerWarning
		case RecNextProtocol:
			protocols = r.Body
		case RecAEAD:
			aeadRecords++
			if err := p.setAEAD(r.Body, offered); err != nil {
				return p, err
			}
		case RecNewCookie:
			if len(p.cookies) == MaxCookies {
				return p, ErrTooManyCookies
			}
			p.cookies = append(p.cookies, slices.Clone(r.Body))
		case RecServer:
			p.server = string(r.Body)
		case RecPort:
			p.port = binary.BigEndian.Uint16(r.Body)
		}
	}
	return p, p.complete(seen, protocols, aeadRecords)
}

// setAEAD checks the server's choice: at most one id (§4.1.5), one we offered.
func (p *response) setAEAD(body []byte, offered []uint16) error {
	switch len(body) {
	case 0:
		return nil // empty: no common algorithm, reported by complete
	case 2:
		p.aead = binary.BigEndian.Uint16(body)
		if !slices.Contains(offered, p.aead) {
			return ErrNotOffered
		}
		return nil
	}
	return ErrBodyLength
}

// complete checks the records that must be there once all are read.
func (p *response) complete(seen seenSet, protocols []byte, aeadRecords int) error {
	switch {
	case !seen.has(RecNextProtocol):
		return ErrMissingRecord
	case len(protocols) == 0:
		return ErrNoCommonProtocol // §4.1.2: the response MAY be empty
	case len(protocols) != 2 || binary.BigEndian.Uint16(protocols) != ProtocolNTPv4:
		return ErrNotOffered // §4.1.2: a subset of what we offered, i.e. {0}
	case aeadRecords == 0:
		return ErrMissingRecord // §4.1.5: required when NTPv4 is negotiated
	case p.aead == 0: // offered never holds 0 (IANA: reserved)
		return ErrNoCommonAEAD
	case len(p.cookies) == 0:
		return ErrMissingRecord // §4.1.6: at least one cookie
	}
	return nil
}
