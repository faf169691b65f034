package tests

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"timegate/internal/report"
	"timegate/ntp"
	"timegate/tests/harness"
)

// The hostile-input suite (issue 11): attacks sent to one running timegate
// over loopback, each with the exact outcome it must get, and what must
// never happen whatever is sent: a crash, a reply larger than its request,
// growth of memory, descriptors or threads, a log line per packet. The
// daemon serves NTP with NTS and a symmetric key, and NTS-KE with a test
// certificate; hostile upstreams have their own test (hostile_upstream_test).

// Sources with their own restrict rules in hostileConf.
const (
	srcGood     = "127.0.0.1"  // no rule of its own: served, not rate limited
	srcDeny     = "127.0.0.9"  // noserve kod: DENY kiss
	srcAuthOnly = "127.0.0.10" // require-auth kod: RSTR kiss unless authenticated
	srcIgnored  = "127.0.0.11" // ignore: silence
	srcLimited  = "127.0.0.12" // limited, no kod of its own: RATE kiss from `ratelimit ... kod`
	srcNoPeer   = "127.0.0.13" // nopeer: mode 1 refused, mode 3 served
)

// hostile is the daemon under attack and what the attacks need.
type hostile struct {
	p       *harness.Process
	ntpPort int
	kePort  int
	cert    string
	aesKey  harness.Key // key 1, AES128 (CMAC)
	md5Key  harness.Key // key 2, MD5: present so that downgrades have a target
}

func startHostile(t *testing.T) *hostile {
	t.Helper()
	bins := build.Binaries(t)
	dir := t.TempDir()
	h := &hostile{aesKey: harness.NewKey(t, 1, "AES128"), md5Key: harness.NewKey(t, 2, "MD5")}
	var key string
	h.cert, key = harness.WriteCert(t, dir)
	keys := harness.WriteKeys(t, dir, h.aesKey, h.md5Key)
	h.ntpPort, h.kePort = harness.FreeUDPPort(t), harness.FreeTCPPort(t)
	// srcGood's own rule, without `limited`, exempts it from the rate
	// table, so that the outcomes below do not depend on how fast they are
	// sent; srcLimited's RATE kiss comes from `ratelimit ... kod` alone
	// (campaign finding: it used to need a `restrict ... kod` too).
	conf := fmt.Sprintf(`port %d
ntsport %d
bindaddress 127.0.0.1
local stratum 5
ntsservercert %s
ntsserverkey %s
ntsdumpdir %s
keyfile %s
ratelimit interval 4 burst 2 leak 4 kod
restrict %s nomodify
restrict %s limited
restrict %s noserve kod
restrict %s require-auth kod
restrict %s ignore
restrict %s nopeer
`, h.ntpPort, h.kePort, h.cert, key, dir, keys, srcGood, srcLimited, srcDeny, srcAuthOnly, srcIgnored, srcNoPeer)
	h.p = harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", dir}})
	return h
}

// usage is what the daemon holds: the figures that must not grow.
type usage struct {
	rssKB, threads, fds int
}

func readUsage(t *testing.T, pid int) usage {
	t.Helper()
	st := procStatus(t, pid)
	var u usage
	fmt.Sscanf(st["VmRSS"], "%d", &u.rssKB)
	fmt.Sscanf(st["Threads"], "%d", &u.threads)
	fds, err := os.ReadDir(filepath.Join("/proc", fmt.Sprint(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	u.fds = len(fds)
	return u
}

// Bounds on growth across the whole suite. Generous on purpose: they catch
// a leak per attack (thousands of packets, hundreds of connections), not
// the Go runtime's normal variation.
const (
	maxRSSGrowthKB     = 64 << 10
	maxThreadGrowth    = 16
	maxFDGrowth        = 4
	maxLogLinesPerTest = 40
)

func (h *hostile) checkUsage(t *testing.T, before usage, logFrom int) {
	t.Helper()
	if !h.p.Running() {
		t.Fatalf("timegate died:\n%s", h.p.Log())
	}
	var after usage
	// Connections the KE attacks left are cut by the server's deadline.
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		after = readUsage(t, h.p.Pid())
		return after.fds <= before.fds+maxFDGrowth, fmt.Sprintf("fds %d → %d", before.fds, after.fds)
	})
	t.Logf("usage before %+v, after %+v", before, after)
	if after.rssKB > before.rssKB+maxRSSGrowthKB || after.threads > before.threads+maxThreadGrowth {
		t.Errorf("resource growth: before %+v, after %+v", before, after)
	}
	if n := strings.Count(h.p.Log()[logFrom:], "\n"); n > maxLogLinesPerTest {
		t.Errorf("%d log lines during the attacks (per-packet logging?):\n%s", n, h.p.Log()[logFrom:])
	}
}

// TestHostile runs every attack on one daemon and checks, at the end, that
// it survived each without growing.
func TestHostile(t *testing.T) {
	h := startHostile(t)
	before := readUsage(t, h.p.Pid())
	logFrom := h.p.LogSize()
	t.Run("ntp", func(t *testing.T) { h.runUDP(t, ntpCases(h)) })
	t.Run("ratelimit kod without restrict kod", h.runRate)
	t.Run("keyed", func(t *testing.T) { h.runUDP(t, keyedCases(t, h)) })
	t.Run("nts", func(t *testing.T) { h.runUDP(t, ntsCases(t, h)) })
	t.Run("ke", func(t *testing.T) { h.runKE(t) })
	h.checkUsage(t, before, logFrom)
}

// Outcomes a datagram can get.
type outcomeKind int

const (
	noReply outcomeKind = iota
	timeReply
	peerReply // mode 2, stratum 5: a stateless symmetric-passive answer
	kissReply
	nakReply
)

// udpCase is one datagram attack and the one outcome it must get.
type udpCase struct {
	name string
	src  string // local address; "" is srcGood
	req  []byte
	want outcomeKind
	kiss ntp.KissCode // for kissReply
	// check, if set, checks a reply further (its MAC, its NTS fields).
	check func(reply []byte) error
}

const (
	// quietWait is how long a case waits for a reply that must not come,
	// once the daemon has counted its request as received (a reply follows
	// its request's processing by microseconds): "no reply" is then a fact,
	// not a reply still on its way from a slow machine.
	quietWait = 100 * time.Millisecond
	// udpRetries resends a case whose expected reply got lost.
	udpRetries = 3
)

// runUDP sends every case from its own socket, all at once, waits until
// the daemon has received them all, then collects the replies; a case that
// wants a reply and got none is resent alone.
func (h *hostile) runUDP(t *testing.T, cases []udpCase) {
	base := h.received(t)
	conns := make([]*net.UDPConn, len(cases))
	to := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: h.ntpPort}
	for i, c := range cases {
		src := c.src
		if src == "" {
			src = srcGood
		}
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)}, to)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns[i] = conn
		conn.Write(c.req)
		if i%64 == 63 {
			time.Sleep(2 * time.Millisecond) // stay within the socket buffers
		}
	}
	want := base + uint64(len(cases))
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		got := h.received(t)
		return got >= want, fmt.Sprintf("daemon received %d of %d datagrams (lost in a socket buffer?)", got-base, len(cases))
	})
	time.Sleep(quietWait)
	deadline := time.Now().Add(quietWait)
	buf := make([]byte, 2048)
	for i, c := range cases {
		conns[i].SetReadDeadline(deadline)
		n, err := conns[i].Read(buf)
		reply := buf[:max(n, 0)]
		for try := 0; err != nil && c.want != noReply && try < udpRetries; try++ {
			conns[i].Write(c.req)
			conns[i].SetReadDeadline(time.Now().Add(time.Second))
			n, err = conns[i].Read(buf)
			reply = buf[:max(n, 0)]
		}
		if err != nil {
			reply = nil
		}
		if msg := judge(c, reply); msg != "" {
			t.Errorf("%s: %s", c.name, msg)
		}
	}
	t.Logf("%d datagram cases", len(cases))
}

// received is the daemon's count of NTP datagrams received (serverstats).
func (h *hostile) received(t *testing.T) uint64 {
	t.Helper()
	// Not harness.RunGatectl, which logs every run: this one is polled.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, build.Binaries(t).Gatectl, "-socket", h.p.ControlSocket, "serverstats", "-json").Output()
	var st report.ServerStats
	if jerr := json.Unmarshal([]byte(out), &st); err != nil || jerr != nil {
		t.Fatalf("gatectl serverstats: %v %v\n%s", err, jerr, out)
	}
	return st.NTP.Received
}

// judge returns what is wrong with the reply a case got, or "".
func judge(c udpCase, reply []byte) string {
	if reply == nil {
		if c.want != noReply {
			return "no reply"
		}
		return ""
	}
	if len(reply) > len(c.req) {
		return fmt.Sprintf("reply of %d bytes to a request of %d: amplification", len(reply), len(c.req))
	}
	if c.want == noReply {
		return fmt.Sprintf("got a %d-byte reply, want none", len(reply))
	}
	rh, err := ntp.DecodeHeader(reply)
	if err != nil {
		return fmt.Sprintf("undecodable reply: %v", err)
	}
	if rh.Origin != ntp.Time64(binary.BigEndian.Uint64(c.req[40:48])) {
		return "reply's origin is not the request's transmit timestamp"
	}
	code, kiss := ntp.IsKiss(&rh)
	switch c.want {
	case timeReply:
		if kiss || rh.Mode != ntp.ModeServer || rh.Stratum != 5 {
			return fmt.Sprintf("want time from stratum 5, got mode %d stratum %d refid %08x", rh.Mode, rh.Stratum, rh.RefID)
		}
	case peerReply:
		if kiss || rh.Mode != ntp.ModeSymmetricPassive || rh.Stratum != 5 {
			return fmt.Sprintf("want mode 2 from stratum 5, got mode %d stratum %d", rh.Mode, rh.Stratum)
		}
	case kissReply, nakReply:
		want := c.kiss
		if c.want == nakReply {
			want = ntp.KissNTSN
		}
		if !kiss || code != want {
			return fmt.Sprintf("want kiss %v, got mode %d stratum %d refid %v", want, rh.Mode, rh.Stratum, code)
		}
	}
	if c.check != nil {
		if err := c.check(reply); err != nil {
			return err.Error()
		}
	}
	return ""
}
