package nts

import (
	"io"
	"strconv"
)

// Exporter derives keying material from the TLS session; it has the shape of
// tls.ConnectionState.ExportKeyingMaterial (RFC 5705, RFC 8446 §7.5).
type Exporter func(label string, context []byte, length int) ([]byte, error)

// ExporterLabel is the RFC 5705 label for NTS keys (RFC 8915 §5.1).
const ExporterLabel = "EXPORTER-network-time-security"

// NegotiateOptions says where the NTP service is, when it is not on the
// NTS-KE host at port 123.
type NegotiateOptions struct {
	// NTPServer, when set, is sent in a Server Negotiation record: an IP
	// literal or an ASCII host name (RFC 8915 §4.1.7).
	NTPServer string
	// NTPPort, when neither 0 nor 123, is sent in a Port Negotiation record
	// (RFC 8915 §4.1.8).
	NTPPort uint16
	// AEADs is the server's order of preference among the AEADs the NTP
	// path implements (chrony's ntsaeads); nil means DefaultAEADs. An id
	// left out is never chosen.
	AEADs []uint16
}

// Validate reports whether the options can go on the wire.
func (o NegotiateOptions) Validate() error {
	if o.NTPServer != "" && !validServerName([]byte(o.NTPServer)) {
		return &configError{"NTP server " + strconv.Quote(o.NTPServer) + " is not an IP literal or ASCII host name"}
	}
	for _, id := range o.AEADs {
		if !supportedAEAD(id) {
			return &configError{"AEAD " + strconv.Itoa(int(id)) + " is not supported (15 and 30 are)"}
		}
	}
	return nil
}

// Negotiate answers one NTS-KE request (RFC 8915 §4). It is pure: keys come
// from export, cookies from ring and rand, and nothing is logged.
//
// It always returns the records to send. A nil error means the response
// grants NTPv4 with the AEAD chosen (chooseAEAD) and carries MaxCookies
// cookies. Otherwise err
// says why it carries no keys: ErrNoCommonProtocol or ErrNoCommonAEAD for a
// well-formed refusal (§4.1.2, §4.1.5), or a *ProtocolError whose Code is the
// one in the Error record of the response.
func Negotiate(req []Record, export Exporter, ring *KeyRing, rand io.Reader, opts NegotiateOptions) ([]Record, error) {
	q, err := readRequest(req)
	if err != nil {
		return refuse(err)
	}
	if !q.ntpv4 {
		return []Record{NextProtocolRecord(), EndOfMessage()}, ErrNoCommonProtocol
	}
	if err := opts.Validate(); err != nil {
		return refuse(internalError(err))
	}
	aead, found := chooseAEAD(q.aeads, opts.AEADs)
	if !found {
		return []Record{NextProtocolRecord(ProtocolNTPv4), AEADRecord(), EndOfMessage()}, ErrNoCommonAEAD
	}
	if ring == nil {
		return refuse(internalError(ErrKeyRing))
	}
	c, err := exportKeys(export, aead)
	if err != nil {
		return refuse(internalError(err))
	}
	resp := make([]Record, 0, 5+MaxCookies)
	resp = append(resp, NextProtocolRecord(ProtocolNTPv4), AEADRecord(aead))
	if opts.NTPPort != 0 && opts.NTPPort != DefaultNTPPort {
		resp = append(resp, PortRecord(opts.NTPPort))
	}
	if opts.NTPServer != "" {
		resp = append(resp, ServerRecord(opts.NTPServer))
	}
	buf := make([]byte, 0, MaxCookies*cookieSize(aead)) // one allocation for all cookies
	for range MaxCookies {
		start := len(buf)
		if buf, err = ring.SealCookie(buf, c, rand); err != nil {
			return refuse(internalError(err))
		}
		resp = append(resp, CookieRecord(buf[start:len(buf):len(buf)]))
	}
	return append(resp, EndOfMessage()), nil
}

// exportKeys derives C2S and S2C (RFC 8915 §5.1). The context is five octets:
//
//	+-------------+---------+-----------------------+
//	| protocol id | AEAD id | 0x00 (C2S) / 0x01 (S2C) |
//	| 2 (0 NTPv4) | 2       | 1                       |
//	+-------------+---------+-----------------------+
func exportKeys(export Exporter, aead uint16) (Cookie, error) {
	c := Cookie{AEAD: aead}
	n := aeadKeyLen(aead)
	if err := exportKey(export, aead, 0x00, c.C2S[:n]); err != nil {
		return c, err
	}
	return c, exportKey(export, aead, 0x01, c.S2C[:n])
}

func exportKey(export Exporter, aead uint16, direction byte, dst []byte) error {
	ctx := exporterContext(ProtocolNTPv4, aead, direction)
	k, err := export(ExporterLabel, ctx[:], len(dst))
	if err != nil {
		return err
	}
	if len(k) != len(dst) {
		return ErrExport
	}
	copy(dst, k)
	return nil
}

func exporterContext(protocol, aead uint16, direction byte) [5]byte {
	return [5]byte{byte(protocol >> 8), byte(protocol), byte(aead >> 8), byte(aead), direction}
}

func refuse(err error) ([]Record, error) {
	code := CodeBadRequest
	if pe, ok := err.(*ProtocolError); ok {
		code = pe.Code
	}
	return ErrorResponse(code), err
}

func internalError(err error) error {
	return &ProtocolError{Code: CodeInternalServerError, Err: err}
}

type configError struct{ msg string }

func (e *configError) Error() string { return "nts: " + e.msg }
func (e *configError) Unwrap() error { return ErrConfig }
