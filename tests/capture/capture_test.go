//go:build capture

package capture

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/nts"
	"timegate/symkey"
	"timegate/tests/harness"
)

var out = flag.String("out", "../..", "module root under which ntp/testdata, nts/testdata and symkey/testdata are written")

// exchange is one datagram received and what was sent back (nil: nothing).
type exchange struct {
	req, reply []byte
	verdict    ntp.Verdict
}

// recorder is a UDP NTP server that answers with responder and records
// everything. The reply to the NTS request numbered dropNTS (1-based) is not
// sent, so that chrony's next request asks for the lost cookie.
type recorder struct {
	conn      *net.UDPConn
	responder *ntp.Responder
	dropNTS   int

	mu  sync.Mutex
	log []exchange
}

func (r *recorder) serve() {
	buf := make([]byte, 2048)
	nts := 0
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		req := append([]byte(nil), buf[:n]...)
		dst := make([]byte, 0, ntp.MaxPacketLen)
		reply, v := r.responder.Respond(dst, req, from, time.Now())
		if v.Auth == ntp.AuthNTS {
			nts++
			if nts == r.dropNTS {
				reply = nil
			}
		}
		if reply != nil {
			r.conn.WriteToUDPAddrPort(reply, from)
		}
		r.mu.Lock()
		r.log = append(r.log, exchange{req: req, reply: append([]byte(nil), reply...), verdict: v})
		r.mu.Unlock()
	}
}

// exchanges returns the exchanges recorded so far whose verdict has auth kind k.
func (r *recorder) exchanges(k ntp.AuthKind) []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	var x []exchange
	for _, e := range r.log {
		if e.verdict.Auth == k {
			x = append(x, e)
		}
	}
	return x
}

// keServer is an NTS-KE server that keeps the plaintext of every request.
type keServer struct {
	ln      net.Listener
	tlsConf *tls.Config
	ring    *nts.KeyRing
	ntpPort uint16

	mu   sync.Mutex
	reqs [][]byte
	errs []error
}

func (k *keServer) serve() {
	for {
		c, err := k.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			raw, err := k.session(tls.Server(c, k.tlsConf))
			k.mu.Lock()
			defer k.mu.Unlock()
			if raw != nil {
				k.reqs = append(k.reqs, raw)
			}
			if err != nil {
				k.errs = append(k.errs, err)
			}
		}()
	}
}

// session runs one NTS-KE session as nts.ServeConn does, but returns the raw
// request message.
func (k *keServer) session(conn *tls.Conn) ([]byte, error) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := conn.Handshake(); err != nil {
		return nil, err
	}
	cs := conn.ConnectionState()
	if cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != nts.ALPN {
		return nil, fmt.Errorf("TLS %x, ALPN %q", cs.Version, cs.NegotiatedProtocol)
	}
	raw, err := readMessage(conn)
	if err != nil {
		return nil, err
	}
	recs, err := nts.ParseRequest(raw)
	if err != nil {
		return raw, err
	}
	resp, err := nts.Negotiate(recs, cs.ExportKeyingMaterial, k.ring, rand.Reader, nts.NegotiateOptions{NTPPort: k.ntpPort})
	if err != nil {
		return raw, err
	}
	msg, err := nts.AppendMessage(nil, resp)
	if err != nil {
		return raw, err
	}
	_, err = conn.Write(msg)
	return raw, err
}

// readMessage reads NTS-KE records until End of Message.
func readMessage(r io.Reader) ([]byte, error) {
	var msg []byte
	hdr := make([]byte, 4)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return nil, err
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		msg = append(append(msg, hdr...), body...)
		if binary.BigEndian.Uint16(hdr)&0x7fff == 0 {
			return msg, nil
		}
		if len(msg) > 4096 {
			return nil, errors.New("request too long")
		}
	}
}

func chronyVersion(t *testing.T) string {
	b, err := exec.Command(harness.RequireBinary(t, "chronyd"), "-v").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestCapture(t *testing.T) {
	version := chronyVersion(t)
	if !strings.Contains(version, "version 4.3 ") {
		t.Fatalf("the golden files are named for chrony 4.3; this is %q", version)
	}
	t.Log(version)
	dir := t.TempDir()
	files := map[string][]byte{} // path under *out → content

	// Keys: one AES128 key, in a keys file both chrony and symkey.Parse read.
	secret := make([]byte, 16)
	rand.Read(secret)
	keyLine := fmt.Sprintf("1 AES128 HEX:%X", secret)
	keysFile := "# A throwaway test key, written by tests/capture (build tag capture).\n# " + version +
		"\n# used it as `server 127.0.0.1 ... key 1`.\n" + keyLine + "\n"
	keysPath := filepath.Join(dir, "keys")
	if err := os.WriteFile(keysPath, []byte(keysFile), 0o600); err != nil {
		t.Fatal(err)
	}
	set, warnings, err := symkey.Parse("keys", []byte(keysFile))
	if err != nil || len(warnings) != 0 {
		t.Fatalf("keys: %v %v", err, warnings)
	}
	files["symkey/testdata/chrony-4.3-aes128.keys"] = []byte(keysFile)

	ring, err := nts.NewKeyRing(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ringBytes, _ := ring.MarshalBinary()
	files["nts/testdata/chrony-4.3-ring.bin"] = ringBytes

	state := &ntp.ServedState{Stratum: 5, RefID: 0x7f7f0101, Precision: -20, RefTime: time.Now(),
		RootDelay: time.Millisecond, RootDispersion: time.Millisecond}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udpPort := udp.LocalAddr().(*net.UDPAddr).Port
	rec := &recorder{conn: udp, dropNTS: 2, responder: &ntp.Responder{
		State: func() *ntp.ServedState { return state },
		Keys: func(id uint32) (ntp.MACKey, bool) {
			k, ok := set.Lookup(id)
			return k, ok
		},
		NTS: &nts.Server{Ring: func() *nts.KeyRing { return ring }},
	}}
	go rec.serve()

	cert, key := harness.WriteCert(t, dir)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ke := &keServer{ln: ln, ring: ring, ntpPort: uint16(udpPort),
		tlsConf: nts.ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil })}
	go ke.serve()

	// one runs a chronyd client until pick finds the exchanges wanted.
	one := func(name string, k ntp.AuthKind, pick func([]exchange) []exchange, o harness.ChronyOptions, check func(*testing.T, *harness.Chrony)) []exchange {
		var got []exchange
		t.Run(name, func(t *testing.T) {
			c := harness.StartChrony(t, o)
			harness.WaitFor(t, 30*time.Second, func() (bool, string) {
				got = pick(answered(rec.exchanges(k)))
				return got != nil, fmt.Sprintf("%d %s requests", len(rec.exchanges(k)), name)
			})
			c.WaitSelected(t, "127.0.0.1", 30*time.Second)
			if check != nil {
				check(t, c)
			}
		})
		if got == nil {
			t.FailNow()
		}
		return got
	}
	authenticated := func(t *testing.T, c *harness.Chrony) {
		harness.WaitFor(t, 10*time.Second, func() (bool, string) {
			nd, err := c.TryNTPData("127.0.0.1")
			return err == nil && nd["Authenticated"] == "Yes", fmt.Sprint(nd, err)
		})
	}

	plain := one("plain", ntp.AuthNone, first, harness.ChronyOptions{
		Servers: []harness.ServerLine{{Port: udpPort}}}, nil)
	files["ntp/testdata/chrony-4.3-client-request.bin"] = plain[0].req
	files["ntp/testdata/chrony-4.3-client-reply.bin"] = plain[0].reply

	keyed := one("key", ntp.AuthKey, first, harness.ChronyOptions{
		Servers: []harness.ServerLine{{Port: udpPort, Key: 1}}, KeyFile: keysPath}, authenticated)
	files["symkey/testdata/chrony-4.3-aes128-request.bin"] = keyed[0].req
	files["symkey/testdata/chrony-4.3-aes128-reply.bin"] = keyed[0].reply

	// NTS: the first request is answered, the second not, the third asks
	// for the lost cookie with a placeholder. The NTP port in the server
	// line is deliberately wrong: chrony must take the one from NTS-KE.
	ntsX := one("nts", ntp.AuthNTS, firstAndPlaceholder, harness.ChronyOptions{
		Servers:     []harness.ServerLine{{Port: 9, NTS: true, NTSPort: ln.Addr().(*net.TCPAddr).Port}},
		TrustedCert: cert}, authenticated)
	files["nts/testdata/chrony-4.3-nts-request.bin"] = ntsX[0].req
	files["nts/testdata/chrony-4.3-nts-reply.bin"] = ntsX[0].reply
	files["nts/testdata/chrony-4.3-nts-placeholder-request.bin"] = ntsX[1].req
	files["nts/testdata/chrony-4.3-nts-placeholder-reply.bin"] = ntsX[1].reply
	ke.mu.Lock()
	if len(ke.errs) != 0 || len(ke.reqs) == 0 {
		t.Fatalf("NTS-KE sessions: %d requests, errors %v", len(ke.reqs), ke.errs)
	}
	files["nts/testdata/chrony-4.3-ke-request.bin"] = ke.reqs[0]
	ke.mu.Unlock()

	for _, all := range [][]exchange{rec.exchanges(ntp.AuthNone), rec.exchanges(ntp.AuthKey), rec.exchanges(ntp.AuthNTS)} {
		for i, e := range all {
			t.Logf("%d: %d-byte request, verdict %+v, %d-byte reply", i, len(e.req), e.verdict, len(e.reply))
		}
	}
	for name, b := range files {
		p := filepath.Join(*out, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", p, len(b))
	}
}

func first(x []exchange) []exchange {
	if len(x) == 0 {
		return nil
	}
	return x[:1]
}

// firstAndPlaceholder returns the first exchange and the first whose
// request carries a Cookie Placeholder.
func firstAndPlaceholder(x []exchange) []exchange {
	for _, e := range x {
		p, err := ntp.Parse(e.req)
		if err != nil {
			continue
		}
		it := p.ExtFields()
		for f, ok := it.Next(); ok; f, ok = it.Next() {
			if f.Type == ntp.EFCookiePlaceholder {
				return []exchange{x[0], e}
			}
		}
	}
	return nil
}

// answered keeps the exchanges that were answered with a reply; with
// dropNTS, the unanswered NTS request is left out, and the one after it is
// the one with a placeholder.
func answered(x []exchange) []exchange {
	var a []exchange
	for _, e := range x {
		if e.reply != nil && e.verdict.Reason == ntp.ReasonOK {
			a = append(a, e)
		}
	}
	return a
}
