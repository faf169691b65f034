package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"timegate/ntp"
	"timegate/nts"
)

// ntsResult is what gatectl query -nts prints: the plain query's fields
// plus the NTS details. The JSON names are a stable interface.
type ntsResult struct {
	*queryResult
	NTS        bool    `json:"nts"`
	KEServer   string  `json:"ke_server"`
	KETimeS    float64 `json:"ke_time_s"`
	AEAD       uint16  `json:"aead"`
	KECookies  int     `json:"ke_cookies"`
	CookieLen  int     `json:"cookie_len"`
	NewCookies int     `json:"new_cookies"`
	NTPServer  string  `json:"ntp_server"`
}

// ntsQuery is one gatectl query -nts: where to run NTS-KE, whom to trust,
// and an NTP port that overrides the negotiated one (0: use the negotiated).
type ntsQuery struct {
	keAddr  string
	caFile  string
	aeads   string // the -aead list, e.g. "30,15"
	port    int
	timeout time.Duration
}

// runQueryNTS is gatectl query -nts HOST[:KEPORT]: NTS-KE over TLS 1.3 with
// HOST (port 4460 unless given), then one authenticated NTP exchange with
// the server and port the KE negotiated (RFC 8915 §4.1.7, §4.1.8). -port
// overrides the negotiated port only when given explicitly, for a server
// behind a port mapping; -timeout bounds each of the two exchanges.
func runQueryNTS(fs *flag.FlagSet, q ntsQuery, port, version int, asJSON bool, stdout, stderr io.Writer) int {
	if fs.NArg() != 1 || version != 4 {
		fmt.Fprint(stderr, "usage: gatectl query -nts [-ca FILE] [-aead LIST] [-port P] [-json] [-timeout D] HOST[:KEPORT]\n"+
			"(NTS needs NTPv4: -version 3 is not allowed)\n")
		return exitUsage
	}
	if _, err := parseAEADs(q.aeads); err != nil {
		fmt.Fprintf(stderr, "gatectl query -nts: -aead: %v\n", err)
		return exitUsage
	}
	q.keAddr = fs.Arg(0)
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "port" {
			q.port = port
		}
	})
	res, err := q.run()
	if err != nil {
		fmt.Fprintf(stderr, "gatectl: query -nts %s: %v\n", q.keAddr, err)
		return exitFail
	}
	printNTSResult(stdout, res, asJSON)
	if !res.Synchronised {
		return exitUnsound
	}
	return exitOK
}

// run performs the two steps: key establishment, then authenticated time.
func (q *ntsQuery) run() (*ntsResult, error) {
	conf, err := q.tlsConfig()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	start := time.Now()
	aeads, err := parseAEADs(q.aeads)
	if err != nil {
		return nil, err
	}
	ke, err := nts.Exchange(ctx, nil, q.keAddr, conf, aeads)
	if err != nil {
		return nil, fmt.Errorf("NTS-KE: %w", err)
	}
	keTime := time.Since(start)
	sess, err := nts.NewClientSession(ke)
	if err != nil {
		return nil, fmt.Errorf("NTS-KE: %w", err)
	}
	port := int(ke.NTPPort)
	if q.port != 0 {
		port = q.port
	}
	addr := net.JoinHostPort(ke.NTPServer, strconv.Itoa(port))
	res := &ntsResult{
		NTS: true, KEServer: keHostPort(q.keAddr), KETimeS: keTime.Seconds(), AEAD: ke.AEAD,
		KECookies: len(ke.Cookies), CookieLen: sess.CookieLen(), NTPServer: addr,
	}
	res.queryResult, res.NewCookies, err = queryNTSTime(addr, sess, q.timeout)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// tlsConfig trusts the system roots, or only the certificates in -ca.
func (q *ntsQuery) tlsConfig() (*tls.Config, error) {
	if q.caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(q.caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", q.caFile)
	}
	return &tls.Config{RootCAs: pool}, nil
}

// queryNTSTime sends one NTS-protected request and waits for an authentic
// answer. Anything unauthenticated (a stranger's packet, a forged kiss) is
// ignored rather than fatal, as it could come from anyone; an NTS NAK that
// answers our request ends the query, since it means the cookie we just got
// does not open.
func queryNTSTime(addr string, sess *nts.ClientSession, timeout time.Duration) (*queryResult, int, error) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	var rnd [8 + 32]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, 0, err
	}
	nonce := ntp.Time64(binary.BigEndian.Uint64(rnd[:]) | 1) // never zero
	uid := rnd[8:]
	req, err := sess.BuildRequest(nil, nonce, uid, rand.Reader)
	if err != nil {
		return nil, 0, err
	}
	conn.SetDeadline(time.Now().Add(timeout))
	t1 := time.Now()
	if _, err := conn.Write(req); err != nil {
		return nil, 0, err
	}
	buf := make([]byte, ntp.MaxPacketLen)
	var ignored error
	for {
		n, err := conn.Read(buf)
		t4 := time.Now()
		if err != nil && ignored != nil {
			return nil, 0, fmt.Errorf("%w; ignored a reply: %w", err, ignored)
		}
		if err != nil {
			return nil, 0, err
		}
		added, authErr := sess.ProcessReply(buf[:n], uid)
		s, err := ntp.CheckReply(buf[:n], 4, nonce, t1, t4)
		switch {
		case errors.Is(err, ntp.ErrBogusOrigin) || errors.Is(err, ntp.ErrShort):
			continue // not an answer to this request
		case errors.Is(authErr, nts.ErrNTSNAK):
			return nil, 0, authErr
		case authErr != nil:
			ignored = authErr
			continue
		}
		r, err := describe(addr, &s, err)
		return r, added, err
	}
}

func printNTSResult(w io.Writer, r *ntsResult, asJSON bool) {
	if asJSON {
		json.NewEncoder(w).Encode(r)
		return
	}
	printResult(w, r.queryResult, false)
	fmt.Fprintf(w, "authenticated:   yes (NTS)\n")
	fmt.Fprintf(w, "nts-ke server:   %s (%.1f ms)\n", r.KEServer, r.KETimeS*1e3)
	fmt.Fprintf(w, "ntp server:      %s\n", r.NTPServer)
	fmt.Fprintf(w, "aead:            %d (%s)\n", r.AEAD, aeadName(r.AEAD))
	fmt.Fprintf(w, "ke cookies:      %d of %d octets\n", r.KECookies, r.CookieLen)
	fmt.Fprintf(w, "new cookies:     %d\n", r.NewCookies)
}

// keHostPort shows the NTS-KE address with its port, as Exchange dials it.
func keHostPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	if len(addr) > 1 && addr[0] == '[' && addr[len(addr)-1] == ']' {
		addr = addr[1 : len(addr)-1]
	}
	return net.JoinHostPort(addr, strconv.Itoa(nts.DefaultKEPort))
}

func aeadName(id uint16) string {
	switch id {
	case nts.AEADAESSIVCMAC256:
		return "AEAD_AES_SIV_CMAC_256"
	case nts.AEADAES128GCMSIV:
		return "AEAD_AES_128_GCM_SIV"
	}
	return "unknown"
}

// parseAEADs reads -aead: AEAD IDs this client supports, in order of
// preference, each at most once.
func parseAEADs(list string) ([]uint16, error) {
	var out []uint16
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || !nts.SupportedAEAD(uint16(n)) || slices.Contains(out, uint16(n)) {
			return nil, fmt.Errorf("%q: want a list of 15 and/or 30", list)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}
