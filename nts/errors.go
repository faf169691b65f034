package nts

import (
	"errors"
	"strconv"
)

// ErrorCode is the body of an NTS-KE Error record (RFC 8915 §4.1.3, IANA
// "Network Time Security Error and Warning Codes").
type ErrorCode uint16

// Error codes defined by RFC 8915 §4.1.3.
const (
	// CodeUnrecognizedCritical answers a record whose critical bit is set
	// but whose type the server does not know (RFC 8915 §4.1.3).
	CodeUnrecognizedCritical ErrorCode = 0
	// CodeBadRequest answers a malformed request, or one that cannot be
	// processed (RFC 8915 §4.1.3).
	CodeBadRequest ErrorCode = 1
	// CodeInternalServerError answers a request that failed for reasons
	// that are the server's own (RFC 8915 §4.1.3).
	CodeInternalServerError ErrorCode = 2
)

func (c ErrorCode) String() string {
	switch c {
	case CodeUnrecognizedCritical:
		return "unrecognized critical record"
	case CodeBadRequest:
		return "bad request"
	case CodeInternalServerError:
		return "internal server error"
	}
	return "error code " + strconv.Itoa(int(c))
}

// ProtocolError is the one typed error of this package: an error whose Code
// crosses the wire in an Error record, sent by us (Negotiate, ServeConn) or
// received from a server (Exchange). Err, when set, says why.
type ProtocolError struct {
	Code ErrorCode
	Err  error
}

func (e *ProtocolError) Error() string {
	s := "nts: protocol error " + strconv.Itoa(int(e.Code)) + " (" + e.Code.String() + ")"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ProtocolError) Unwrap() error { return e.Err }

// Is reports whether target is a *ProtocolError with the same Code, so that
// errors.Is(err, &ProtocolError{Code: CodeBadRequest}) works whatever the cause.
func (e *ProtocolError) Is(target error) bool {
	t, ok := target.(*ProtocolError)
	return ok && t.Code == e.Code
}

// ErrMalformed is wrapped by every error about the framing or the content of
// NTS-KE records, so that an edge can tell bad input from I/O failure with a
// single errors.Is.
var ErrMalformed = errors.New("nts: malformed NTS-KE message")

// Sentinel errors of the record codec and of negotiation. Each one that
// describes hostile or broken input wraps ErrMalformed.
var (
	ErrTruncated        = malformed("truncated record")
	ErrMessageTooLarge  = malformed("message exceeds size limit")
	ErrTooManyRecords   = malformed("too many records")
	ErrNoEndOfMessage   = malformed("no End of Message record")
	ErrDataAfterEnd     = malformed("data after End of Message")
	ErrBodyLength       = malformed("record body length invalid for its type")
	ErrCriticalBit      = malformed("critical bit not set where RFC 8915 requires it")
	ErrDuplicateRecord  = malformed("singular record repeated")
	ErrUnexpectedRecord = malformed("record not allowed in this direction")
	ErrUnknownCritical  = malformed("unrecognized critical record")
	ErrMissingRecord    = malformed("required record missing")
	ErrBadServerName    = malformed("server name is not an IP literal or ASCII hostname")
	ErrBadPort          = malformed("port 0 is not a port")
	ErrNotOffered       = malformed("server chose something the client did not offer")
	ErrTooManyCookies   = malformed("more cookies than a server may send")
	ErrRecordType       = malformed("record type does not fit 15 bits")

	// ErrNoCommonProtocol: the request did not offer NTPv4, so the response
	// carries an empty Next Protocol record and no keys (RFC 8915 §4.1.2).
	ErrNoCommonProtocol = errors.New("nts: no common next protocol")
	// ErrNoCommonAEAD: none of the offered AEAD algorithms is supported, so
	// the response carries an empty AEAD record and no keys (RFC 8915 §4.1.5).
	ErrNoCommonAEAD = errors.New("nts: no common AEAD algorithm")
	// ErrPeerWarning: the server sent a Warning record. No warning codes are
	// defined and unrecognised ones MUST be treated as errors (RFC 8915 §4.1.4).
	ErrPeerWarning = errors.New("nts: server sent a warning")
	// ErrPeerError is the cause inside a ProtocolError built from an Error
	// record that a server sent us.
	ErrPeerError = errors.New("nts: server sent an error record")

	// ErrALPN: the TLS handshake did not settle on "ntske/1" (RFC 8915 §4).
	ErrALPN = errors.New("nts: ALPN protocol is not ntske/1")
	// ErrTLSVersion: the handshake settled below TLS 1.3 (RFC 8915 §3).
	ErrTLSVersion = errors.New("nts: TLS version below 1.3")
	// ErrHandshake wraps a failed TLS handshake.
	ErrHandshake = errors.New("nts: TLS handshake failed")

	// ErrCookieKeyUnknown: the cookie names a master key that this ring no
	// longer (or never) held, typically a cookie older than the kept keys.
	ErrCookieKeyUnknown = errors.New("nts: cookie key unknown")
	// ErrCookieInvalid: wrong length, failed authentication or bad plaintext.
	ErrCookieInvalid = errors.New("nts: cookie invalid")
	// ErrKeyRing: a key ring file or argument is invalid.
	ErrKeyRing = errors.New("nts: invalid key ring")
	// ErrUnsupportedAEAD: an AEAD id this package cannot use.
	ErrUnsupportedAEAD = errors.New("nts: unsupported AEAD algorithm")
	// ErrExport: the TLS exporter gave keying material of the wrong length.
	ErrExport = errors.New("nts: key export returned a wrong length")
	// ErrConfig: an invalid configuration value.
	ErrConfig = errors.New("nts: invalid configuration")
)

type malformedError struct{ msg string }

func (e *malformedError) Error() string { return "nts: " + e.msg }
func (e *malformedError) Unwrap() error { return ErrMalformed }

func malformed(msg string) error { return &malformedError{msg} }
