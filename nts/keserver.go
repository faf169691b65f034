package nts

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"
)

// ALPN is the TLS application protocol of NTS-KE (RFC 8915 §4).
const ALPN = "ntske/1"

// DefaultTimeout bounds a whole server-side NTS-KE session, handshake and
// request together, like chrony's SERVER_TIMEOUT: a client that connects
// and stalls (slowloris) holds a connection slot for at most this long.
const DefaultTimeout = 2 * time.Second

// ServerConfig is what ServeConn needs. Nil functions and zero values take
// defaults, as in crypto/tls.Config.
type ServerConfig struct {
	// Ring returns the key ring to seal with; loading it per connection
	// (an atomic.Pointer's Load) makes a rotation apply to the next one.
	Ring func() *KeyRing
	// Rand supplies cookie nonces; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock for the deadline; nil means time.Now.
	Now func() time.Time
	// Timeout covers handshake, request and response; 0 means DefaultTimeout.
	Timeout time.Duration
	// Options says where the NTP service is.
	Options NegotiateOptions
}

// ServerTLSConfig is the TLS configuration of an NTS-KE server: TLS 1.3 only
// (RFC 8915 §3; Go would otherwise accept 1.2), ALPN "ntske/1", and no
// session tickets, which would only let a client skip the handshake that
// proves the server (and keep ticket keys we would have to rotate too).
func ServerTLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		NextProtos:             []string{ALPN},
		GetCertificate:         getCert,
		SessionTicketsDisabled: true,
	}
}

// ServeConn runs one server-side NTS-KE session and closes conn. One deadline
// covers it all; the steps are those of RFC 8915 §4: handshake, check the
// TLS version and ALPN, read one request up to End of Message, negotiate,
// write the response, close.
//
// The error classifies the session for counters: nil when keys were issued;
// ErrNoCommonProtocol / ErrNoCommonAEAD for a well-formed refusal; a
// *ProtocolError when an Error record was sent; ErrHandshake, ErrTLSVersion
// or ErrALPN when the TLS layer failed; anything else is I/O (timeouts,
// resets), after which nothing was sent.
func ServeConn(conn *tls.Conn, cfg *ServerConfig) error {
	defer conn.Close()
	if err := conn.SetDeadline(cfg.now().Add(cfg.timeout())); err != nil {
		return err
	}
	if err := handshake(conn); err != nil {
		return err
	}
	var buf [MaxRequestSize]byte
	recs, err := readRequestMessage(conn, buf[:])
	var resp []Record
	switch {
	case errors.Is(err, ErrMalformed):
		err = badRequest(err)
		resp = ErrorResponse(CodeBadRequest)
	case err != nil:
		return err
	default:
		cs := conn.ConnectionState()
		resp, err = Negotiate(recs, cs.ExportKeyingMaterial, cfg.Ring(), cfg.rand(), cfg.Options)
	}
	if werr := writeMessage(conn, resp); werr != nil {
		return werr
	}
	return err
}

// handshake completes the TLS handshake and checks what Go does not: a
// client that sends no ALPN extension completes the handshake with an empty
// NegotiatedProtocol, and a config may be built without MinVersion.
func handshake(conn *tls.Conn) error {
	if err := conn.Handshake(); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	cs := conn.ConnectionState()
	if cs.Version != tls.VersionTLS13 {
		return ErrTLSVersion
	}
	if cs.NegotiatedProtocol != ALPN {
		return ErrALPN
	}
	return nil
}

func readRequestMessage(r io.Reader, buf []byte) ([]Record, error) {
	msg, err := readMessage(r, buf)
	if err != nil {
		return nil, err
	}
	return ParseRequest(msg)
}

// readMessage reads until a whole message (up to End of Message) is in buf.
// A message that does not fit buf is ErrMessageTooLarge; bytes after End of
// Message in the same read are ErrDataAfterEnd (RFC 8915 §4: one request,
// then the client waits).
func readMessage(r io.Reader, buf []byte) ([]byte, error) {
	have := 0
	for {
		if have == len(buf) {
			return nil, ErrMessageTooLarge
		}
		n, err := r.Read(buf[have:])
		have += n
		if m := messageLen(buf[:have]); m > 0 {
			if m != have {
				return nil, ErrDataAfterEnd
			}
			return buf[:m], nil
		}
		if err != nil {
			if err == io.EOF && have > 0 {
				return nil, ErrTruncated
			}
			return nil, err
		}
	}
}

func writeMessage(w io.Writer, recs []Record) error {
	out, err := AppendMessage(make([]byte, 0, 2048), recs)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

func (c *ServerConfig) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *ServerConfig) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *ServerConfig) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}
