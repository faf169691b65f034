package tests

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"timegate/internal/report"
	"timegate/nts"
	"timegate/tests/harness"
)

// Two campaign attacks need addresses loopback does not have: requests from
// broadcast and multicast sources, and NTS-KE slowloris from fresh /64s
// inside one IPv6 /48. This test runs timegate in a network namespace of
// its own, where only lo exists (a reply to a broadcast source could not
// leave the machine even if the check regressed) and where a local route
// makes all of 2001:db8::/32 bindable; the attacks run inside it from this
// test binary, re-executed under nsenter (netnsHelper below).

const netnsHelperEnv = "TIMEGATE_NETNS_HELPER"

func TestHostileNetns(t *testing.T) {
	harness.RequireRoot(t, "network namespaces and raw sockets")
	for _, b := range []string{"unshare", "nsenter", "ip"} {
		harness.RequireBinary(t, b)
	}
	bins := build.Binaries(t)
	dir := t.TempDir()
	cert, key := harness.WriteCert(t, dir)
	wrapper := filepath.Join(dir, "timegate-netns")
	script := "#!/bin/sh\nexec unshare --net -- sh -c 'ip link set lo up && ip -6 route add local 2001:db8::/32 dev lo table local && exec \"$0\" \"$@\"' " +
		bins.Timegate + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ntpPort, kePort := harness.FreeUDPPort(t), harness.FreeTCPPort(t)
	conf := fmt.Sprintf("port %d\nntsport %d\nbindaddress 127.0.0.1\nbindaddress ::1\nlocal stratum 5\n"+
		"ntsservercert %s\nntsserverkey %s\nntsdumpdir %s\n", ntpPort, kePort, cert, key, dir)
	p := harness.StartTimegateWith(t, wrapper, conf, harness.TimegateOptions{
		Args: []string{"-state", dir}, LogReady: `(?s)serving NTP.*serving NTS-KE.*serving NTS-KE`,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/proc/"+strconv.Itoa(p.Pid())+"/ns/net",
		os.Args[0], "-test.run=^TestHostileNetnsHelper$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d,%s", netnsHelperEnv, ntpPort, kePort, cert))
	out, err := cmd.CombinedOutput()
	t.Logf("helper in the namespace:\n%s", out)
	if err != nil {
		t.Errorf("helper: %v", err)
	}
	st := serverStats(t, p)
	t.Logf("NTS-KE: %+v", st.KE)
	if got := st.NTP.Dropped["source-addr"]; got != 2 {
		t.Errorf("dropped for their source address: %d, want 2 (broadcast, multicast)", got)
	}
	if st.NTP.Replied != 0 {
		t.Errorf("%d replies to forged sources", st.NTP.Replied)
	}
}

func serverStats(t *testing.T, p *harness.Process) report.ServerStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, build.Binaries(t).Gatectl, "-socket", p.ControlSocket, "serverstats", "-json").Output()
	var st report.ServerStats
	if jerr := json.Unmarshal(out, &st); err != nil || jerr != nil {
		t.Fatalf("gatectl serverstats: %v %v\n%s", err, jerr, out)
	}
	return st
}

// TestHostileNetnsHelper is TestHostileNetns's attacker, run inside the
// namespace; on its own (without the variable) it has nothing to do.
func TestHostileNetnsHelper(t *testing.T) {
	spec := os.Getenv(netnsHelperEnv)
	if spec == "" {
		return
	}
	var ntpPort, kePort int
	var cert string
	if _, err := fmt.Sscanf(spec, "%d,%d,%s", &ntpPort, &kePort, &cert); err != nil {
		t.Fatalf("%s=%q: %v", netnsHelperEnv, spec, err)
	}
	// Forged sources: the daemon must drop both (counted by the parent).
	spoofUDP(t, [4]byte{255, 255, 255, 255}, 1234, ntpPort, request(1, 4, 3))
	spoofUDP(t, [4]byte{224, 0, 0, 1}, 1234, ntpPort, request(2, 4, 3))
	ke := net.JoinHostPort("::1", strconv.Itoa(kePort))
	// 40 idle connections from 40 /64s of 2001:db8:1::/48: at most 32 (the
	// per-/48 share) hold slots; the rest are refused.
	var idle []net.Conn
	refused := 0
	for i := range 40 {
		c, err := freebindDialer(fmt.Sprintf("2001:db8:1:%x::1", i+1)).Dial("tcp", ke)
		if errors.Is(err, syscall.ECONNRESET) {
			refused++ // refused so fast that the reset beat Dial's return
			continue
		}
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(300 * time.Millisecond) // older than evictMinAge
	conf := &tls.Config{RootCAs: harness.CertPool(t, cert), ServerName: "localhost"}
	for _, src := range []string{"2001:db8:2::1", "2001:db8:1:ffff::1"} {
		kctx, kcancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := nts.Exchange(kctx, freebindDialer(src), ke, conf, []uint16{15})
		kcancel()
		if err != nil || len(res.Cookies) != nts.MaxCookies {
			t.Errorf("client %s during the /48 flood: %v", src, err)
		}
	}
	// A short wait each (the server cuts idle sessions at 2 s: read them all
	// well before that); a closed connection answers at once.
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			refused++
		}
	}
	// 8 over the share at once, one more evicted for the same-/48 client.
	if refused != 9 {
		t.Errorf("%d of 40 idle connections from one /48 closed, want 9", refused)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// freebindDialer dials from src, which need not be configured: the
// namespace routes all of 2001:db8::/32 to lo, IP_FREEBIND lets a socket
// bind to an address of it.
func freebindDialer(src string) *net.Dialer {
	return &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)},
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// spoofUDP sends payload to 127.0.0.1:port from src:srcPort through a raw
// socket (IP_HDRINCL), as an attacker forging its source would.
func spoofUDP(t *testing.T, src [4]byte, srcPort, port int, payload []byte) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		t.Fatalf("raw socket: %v", err)
	}
	defer syscall.Close(fd)
	udp := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], uint16(srcPort))
	binary.BigEndian.PutUint16(udp[2:], uint16(port))
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	udp = append(udp, payload...) // checksum 0: none (RFC 768, IPv4)
	ip := make([]byte, 20, 20+len(udp))
	ip[0], ip[8], ip[9] = 0x45, 64, syscall.IPPROTO_UDP
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	copy(ip[12:16], src[:])
	copy(ip[16:20], []byte{127, 0, 0, 1})
	ip = append(ip, udp...)
	if err := syscall.Sendto(fd, ip, 0, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("sendto: %v", err)
	}
}
