package nts

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// DefaultKEPort is the NTS-KE TCP port (RFC 8915 §7.1).
const DefaultKEPort = 4460

// Dialer is what Exchange needs to open a TCP connection; *net.Dialer fits.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// KEResult is what a client keeps from one NTS-KE exchange (RFC 8915 §4).
type KEResult struct {
	AEAD      uint16   // the algorithm the server chose
	C2S, S2C  []byte   // exported keys (RFC 8915 §5.1)
	Cookies   [][]byte // 1..MaxCookies cookies, in the order received
	NTPServer string   // from Server Negotiation, else the KE server's IP
	NTPPort   uint16   // from Port Negotiation, else DefaultNTPPort
	TLS       tls.ConnectionState
}

// aeadKeyLen maps the AEAD ids a client may offer to their key length (RFC
// 5297 §2.2 for AES-SIV-CMAC, RFC 8452 for AES-128-GCM-SIV): the length of
// C2S and S2C to export.
func aeadKeyLen(id uint16) int {
	switch id {
	case 15: // AEAD_AES_SIV_CMAC_256
		return 32
	case 16: // AEAD_AES_SIV_CMAC_384
		return 48
	case 17: // AEAD_AES_SIV_CMAC_512
		return 64
	case 30: // AEAD_AES_128_GCM_SIV
		return 16
	}
	return 0
}

// Exchange runs a client NTS-KE session with addr ("host" or "host:port",
// port DefaultKEPort by default) and returns keys and cookies. tlsConf
// supplies trust (RootCAs) and may be nil for the system roots; Exchange
// forces TLS 1.3, ALPN "ntske/1" and, when unset, SNI from addr. aeads lists
// the algorithms to offer in order of preference; nil offers AEAD 15 only.
// ctx bounds the whole exchange. dialer nil means a plain net.Dialer.
func Exchange(ctx context.Context, dialer Dialer, addr string, tlsConf *tls.Config, aeads []uint16) (*KEResult, error) {
	if len(aeads) == 0 {
		aeads = []uint16{AEADAESSIVCMAC256}
	}
	for _, id := range aeads {
		if aeadKeyLen(id) == 0 {
			return nil, ErrUnsupportedAEAD
		}
	}
	host, hostport := splitKEAddr(addr)
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	raw, err := dialer.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, clientTLSConfig(tlsConf, host))
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	return exchange(ctx, conn, aeads)
}

func exchange(ctx context.Context, conn *tls.Conn, aeads []uint16) (*KEResult, error) {
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	cs := conn.ConnectionState()
	if cs.Version != tls.VersionTLS13 {
		return nil, ErrTLSVersion
	}
	if cs.NegotiatedProtocol != ALPN {
		return nil, ErrALPN
	}
	req := []Record{NextProtocolRecord(ProtocolNTPv4), AEADRecord(aeads...), EndOfMessage()}
	if err := writeMessage(conn, req); err != nil {
		return nil, err
	}
	buf := make([]byte, MaxResponseSize)
	msg, err := readMessage(conn, buf)
	if err != nil {
		return nil, err
	}
	recs, err := ParseResponse(msg)
	if err != nil {
		return nil, err
	}
	p, err := readResponse(recs, aeads)
	if err != nil {
		return nil, err
	}
	return result(p, cs, conn.RemoteAddr())
}

func result(p response, cs tls.ConnectionState, remote net.Addr) (*KEResult, error) {
	res := &KEResult{AEAD: p.aead, Cookies: p.cookies, NTPServer: p.server, NTPPort: p.port, TLS: cs}
	if res.NTPPort == 0 {
		res.NTPPort = DefaultNTPPort
	}
	if res.NTPServer == "" { // §4.1.7: same IP address as the NTS-KE server
		if ap, err := netip.ParseAddrPort(remote.String()); err == nil {
			res.NTPServer = ap.Addr().Unmap().String()
		}
	}
	n := aeadKeyLen(p.aead)
	for i, dst := range []*[]byte{&res.C2S, &res.S2C} {
		ctx := exporterContext(ProtocolNTPv4, p.aead, byte(i))
		k, err := cs.ExportKeyingMaterial(ExporterLabel, ctx[:], n)
		if err != nil {
			return nil, err
		}
		*dst = k
	}
	return res, nil
}

func clientTLSConfig(base *tls.Config, host string) *tls.Config {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = &tls.Config{}
	}
	c.MinVersion = tls.VersionTLS13
	c.NextProtos = []string{ALPN}
	if c.ServerName == "" {
		c.ServerName = host
	}
	return c
}

// splitKEAddr returns the host (for SNI) and host:port (for dialing).
func splitKEAddr(addr string) (host, hostport string) {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h, addr
	}
	h := addr
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	return h, net.JoinHostPort(h, strconv.Itoa(DefaultKEPort))
}
