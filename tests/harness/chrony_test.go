package harness_test

import (
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"timegate/tests/harness"
)

// syncTimeout is generous: on loopback at minpoll -6 a source is selected in
// about 2 s.
const syncTimeout = 15 * time.Second

// capSysTime is CAP_SYS_TIME's bit in /proc/PID/status capability masks.
const capSysTime = 25

func hasIPv6Loopback() bool {
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// capabilities returns the bounding and effective capability masks of pid.
func capabilities(t *testing.T, pid int) (bnd, eff uint64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		switch k {
		case "CapBnd":
			bnd = n
		case "CapEff":
			eff = n
		}
	}
	return bnd, eff
}

func TestChronyPlain(t *testing.T) {
	t.Parallel()
	srv := harness.StartChrony(t, harness.ChronyOptions{Name: "server", LocalStratum: 5})
	servers := []harness.ServerLine{srv.Server()}
	ipv6 := hasIPv6Loopback()
	if ipv6 { // the same server over IPv6: chrony keeps it as a second source
		s := srv.Server()
		s.Host = "::1"
		servers = append(servers, s)
	}
	cli := harness.StartChrony(t, harness.ChronyOptions{Name: "client", Servers: servers})
	if srv.NTSPort != 0 || cli.Port != 0 {
		t.Errorf("server NTS port %d, client port %d: want both 0", srv.NTSPort, cli.Port)
	}

	// Every source reached at stratum 5, one of them selected.
	harness.WaitFor(t, syncTimeout, func() (bool, string) {
		srcs := cli.Sources(t)
		selected := 0
		for _, s := range srcs {
			if s.Reach != 0xff || s.Stratum != 5 || s.Mode != "^" {
				return false, fmt.Sprintf("sources %+v", srcs)
			}
			if s.Selected() {
				selected++
			}
		}
		return len(srcs) == len(servers) && selected == 1, fmt.Sprintf("sources %+v", srcs)
	})
	if ipv6 {
		if nd := cli.NTPData(t, "::1"); nd["Remote address ID"] != "CF404DC8" || nd["Local address"] != "::1" {
			t.Errorf("ntpdata ::1: %v", nd)
		}
	}
	tr := cli.Tracking(t)
	if tr.Stratum != 6 || tr.Leap != "Normal" || !(tr.RefName == "127.0.0.1" && tr.RefID == "7F000001" || tr.RefName == "::1" && tr.RefID == "CF404DC8") {
		t.Errorf("client tracking %+v, want stratum 6 from 127.0.0.1 or ::1", tr)
	}
	if st := srv.Tracking(t); st.Stratum != 5 || st.RefID != "7F7F0101" {
		t.Errorf("server tracking %+v, want local stratum 5", st)
	}
	nd := cli.NTPData(t, "127.0.0.1")
	if nd["Mode"] != "Server" || nd["Stratum"] != "5" || nd["Remote port"] != strconv.Itoa(srv.Port) || nd["Authenticated"] != "No" {
		t.Errorf("ntpdata %v", nd)
	}
	if a, _ := harness.FindAuthData(cli.AuthData(t), "127.0.0.1"); a.Mode != "-" {
		t.Errorf("authdata %+v, want no authentication", a)
	}
	ss := srv.ServerStats(t)
	if ss.NTPPackets == 0 || ss.AuthNTPPackets != 0 || ss.NTSKEAccepted != 0 {
		t.Errorf("server stats %+v, want plain NTP packets only", ss)
	}
	hits := map[string]int64{}
	cl := srv.Clients(t)
	for _, c := range cl {
		hits[c.Addr] = c.NTPHits
	}
	if hits["127.0.0.1"] == 0 || ipv6 && hits["::1"] == 0 {
		t.Errorf("server clients %+v, want NTP hits from 127.0.0.1 and ::1", cl)
	}

	// chronyd never holds CAP_SYS_TIME when setpriv is there.
	if _, ok := harness.LookBinary("setpriv"); ok {
		for _, c := range []*harness.Chrony{srv, cli} {
			if bnd, eff := capabilities(t, c.Pid()); bnd&(1<<capSysTime) != 0 || eff&(1<<capSysTime) != 0 {
				t.Errorf("%s: CapBnd %x CapEff %x include CAP_SYS_TIME", c.Name, bnd, eff)
			}
		}
	}

	// A server restart: same ports, new process, the client hears it again.
	rx, _ := strconv.Atoi(cli.NTPData(t, "127.0.0.1")["Total RX"])
	port, pid := srv.Port, srv.Pid()
	srv.Restart(t)
	if srv.Port != port || srv.Pid() == pid {
		t.Errorf("restart: port %d→%d, pid %d→%d", port, srv.Port, pid, srv.Pid())
	}
	harness.WaitFor(t, syncTimeout, func() (bool, string) {
		nd := cli.NTPData(t, "127.0.0.1")
		n, _ := strconv.Atoi(nd["Total RX"])
		return n > rx+5, fmt.Sprintf("client total RX %d, was %d before the restart", n, rx)
	})
}

func TestChronyNTS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := harness.WriteCert(t, dir)
	srv := harness.StartChrony(t, harness.ChronyOptions{Name: "server", LocalStratum: 5, NTSServerCert: cert, NTSServerKey: key})
	if srv.NTSPort == 0 {
		t.Fatal("NTS server without an NTS-KE port")
	}
	cli := harness.StartChrony(t, harness.ChronyOptions{Name: "client", Servers: []harness.ServerLine{srv.Server()}, TrustedCert: cert})
	// A client that does not trust the test certificate must never get time.
	untrusting := srv.Server()
	untrusting.Host = "127.0.0.2"
	other := harness.StartChrony(t, harness.ChronyOptions{Name: "untrusting client", Servers: []harness.ServerLine{untrusting}})

	cli.WaitSelected(t, "127.0.0.1", syncTimeout)
	var a harness.AuthData
	harness.WaitFor(t, syncTimeout, func() (bool, string) {
		a, _ = harness.FindAuthData(cli.AuthData(t), "127.0.0.1")
		return a.Cookies == 8, fmt.Sprintf("authdata %+v", a)
	})
	if a.Mode != "NTS" || a.Type != 15 || a.KeyLen != 256 || a.CookieLen != 100 || a.KeyID != 1 || a.Attempts != 0 || a.NAK || a.LastKE < 0 {
		t.Errorf("authdata %+v, want NTS, AEAD 15, 256-bit keys, 100-byte cookies, one KE", a)
	}
	if nd := cli.NTPData(t, "127.0.0.1"); nd["Authenticated"] != "Yes" || nd["Stratum"] != "5" {
		t.Errorf("ntpdata Authenticated %q Stratum %q, want Yes 5", nd["Authenticated"], nd["Stratum"])
	}
	if tr := cli.Tracking(t); tr.Stratum != 6 {
		t.Errorf("client stratum %d, want 6", tr.Stratum)
	}
	var oa harness.AuthData
	harness.WaitFor(t, syncTimeout, func() (bool, string) {
		oa, _ = harness.FindAuthData(other.AuthData(t), "127.0.0.2")
		return oa.Attempts > 0, fmt.Sprintf("untrusting client authdata %+v", oa)
	})
	if ond := other.NTPData(t, "127.0.0.2"); oa.Cookies != 0 || ond["Total RX"] != "0" || ond["Authenticated"] != "No" {
		t.Errorf("untrusting client: authdata %+v, ntpdata %v; want no cookies and no packets", oa, ond)
	}
	if ss := srv.ServerStats(t); ss.NTSKEAccepted < 2 || ss.AuthNTPPackets == 0 {
		// Two KE connections: the trusting client's, and the untrusting one's
		// attempt (accepted by TCP, refused by its TLS verification).
		t.Errorf("server stats %+v, want NTS-KE connections and authenticated packets", ss)
	}

}

func TestChronySymmetricKey(t *testing.T) {
	t.Parallel()
	key := harness.NewKey(t, 1, "AES128")
	keys := harness.WriteKeys(t, t.TempDir(), key)
	wrong := harness.WriteKeys(t, t.TempDir(), harness.NewKey(t, 1, "AES128"))

	srv := harness.StartChrony(t, harness.ChronyOptions{Name: "server", LocalStratum: 5, KeyFile: keys})
	line := srv.Server()
	line.Key = 1
	cli := harness.StartChrony(t, harness.ChronyOptions{Name: "client", Servers: []harness.ServerLine{line}, KeyFile: keys})
	bad := harness.StartChrony(t, harness.ChronyOptions{Name: "wrong-key client", Servers: []harness.ServerLine{line}, KeyFile: wrong})

	cli.WaitSelected(t, "127.0.0.1", syncTimeout)
	a, _ := harness.FindAuthData(cli.AuthData(t), "127.0.0.1")
	if a.Mode != "SK" || a.KeyID != 1 || a.Type != 13 || a.KeyLen != 128 || a.LastKE != -1 {
		t.Errorf("authdata %+v, want SK key 1, type 13 (AES128), 128 bits", a)
	}
	if nd := cli.NTPData(t, "127.0.0.1"); nd["Authenticated"] != "Yes" {
		t.Errorf("ntpdata Authenticated %q, want Yes", nd["Authenticated"])
	}
	if tr := cli.Tracking(t); tr.Stratum != 6 {
		t.Errorf("client stratum %d, want 6", tr.Stratum)
	}
	// chronyd answers a bad MAC with nothing at all.
	bnd := bad.NTPData(t, "127.0.0.1")
	if tx, _ := strconv.Atoi(bnd["Total TX"]); tx == 0 || bnd["Total RX"] != "0" {
		t.Errorf("wrong-key client: total TX %s RX %s; want requests sent and none answered", bnd["Total TX"], bnd["Total RX"])
	}
	if ss := srv.ServerStats(t); ss.AuthNTPPackets == 0 {
		t.Errorf("server stats %+v, want authenticated packets", ss)
	}
}

// A Shift instance serves true time + Shift cleanly: a client sees exactly the shift
// with a normal, positive delay (under libfaketime it saw half the shift and a
// negative delay), and selection rejects it as a falseticker.
func TestChronyShift(t *testing.T) {
	t.Parallel()
	honest := harness.StartChrony(t, harness.ChronyOptions{Name: "honest server", LocalStratum: 5})
	liar := harness.StartChrony(t, harness.ChronyOptions{Name: "liar +3s", LocalStratum: 5, Shift: 3})
	// One honest server seen through three addresses (chrony keeps one source per
	// IP), and the liar: the liar is the falseticker.
	var servers []harness.ServerLine
	for _, host := range []string{"127.0.0.1", "127.0.0.3", "127.0.0.4"} {
		s := honest.Server()
		s.Host = host
		servers = append(servers, s)
	}
	l := liar.Server()
	l.Host = "127.0.0.5"
	// minsources 2: chrony spaces its first requests to different sources, and
	// with the default of 1 it follows whichever answers first — the liar, now
	// and then.
	cli := harness.StartChrony(t, harness.ChronyOptions{Name: "client", Servers: append(servers, l),
		ExtraConfig: []string{"minsources 2"}})

	harness.WaitFor(t, syncTimeout, func() (bool, string) {
		srcs := cli.Sources(t)
		for _, s := range srcs {
			if s.Reach != 0xff {
				return false, fmt.Sprintf("not all sources reached: %+v", srcs)
			}
		}
		liar, _ := harness.FindSource(srcs, "127.0.0.5")
		tr := cli.Tracking(t)
		return liar.State == "x" && tr.Stratum == 6, fmt.Sprintf("liar %+v, client tracking %+v", liar, tr)
	})
	nd := cli.NTPData(t, "127.0.0.5")
	off, err := strconv.ParseFloat(nd["Offset"], 64)
	// The bounds tell a clean shift (+3 s, positive delay) from
	// libfaketime's (+1.5 s, negative delay) with room for one sample
	// taken on a busy CI machine.
	if err != nil || math.Abs(off-3) > 0.05 {
		t.Errorf("ntpdata offset of the shifted server %q, want +3 s ± 50 ms", nd["Offset"])
	}
	if d, err := strconv.ParseFloat(nd["Peer delay"], 64); err != nil || d <= 0 || d > 0.1 {
		t.Errorf("ntpdata delay to the shifted server %q, want positive and under 100 ms on loopback", nd["Peer delay"])
	}
	if nd["Stratum"] != "5" || nd["Reference ID"] != "7F000002" {
		t.Errorf("shifted server: stratum %s refid %s, want 5 and its reference 127.0.0.2", nd["Stratum"], nd["Reference ID"])
	}
	s, _ := harness.FindSource(cli.Sources(t), "127.0.0.5")
	if math.Abs(s.MeasuredOffset+3) > 0.05 {
		t.Errorf("sources offset %v, want -3 s (the local clock is 3 s behind the liar)", s.MeasuredOffset)
	}
	if h, _ := harness.FindSource(cli.Sources(t), "127.0.0.1"); math.Abs(h.MeasuredOffset) > 0.01 {
		t.Errorf("honest source offset %v, want about 0", h.MeasuredOffset)
	}
	if tr := cli.Tracking(t); tr.Stratum != 6 || tr.RefName == "127.0.0.5" {
		t.Errorf("client tracking %+v, want stratum 6 from an honest source", tr)
	}
}

func TestStartChronyPortTaken(t *testing.T) {
	harness.RequireBinary(t, "chronyd")
	harness.RequireRoot(t, "chronyd")
	port := harness.FreeUDPPort(t)
	held, err := netListenUDP(port)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	r := record(t, func(tb testing.TB) {
		harness.StartChrony(tb, harness.ChronyOptions{Name: "server", LocalStratum: 5, Port: port})
	})
	if !strings.Contains(r.fatal, "Could not open NTP socket") {
		t.Errorf("StartChrony on a taken port: %q", r.fatal)
	}
}
