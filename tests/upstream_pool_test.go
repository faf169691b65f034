package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"timegate/internal/report"
	"timegate/tests/harness"
)

// An NTS pool against a real chronyd: `pool pool.test nts`, where pool.test
// resolves to three loopback addresses (in a network namespace the test
// makes, whose hosts file `ip netns exec` puts in place of /etc/hosts), all
// served by one chronyd NTS server whose certificate names pool.test and no
// address. timegate runs NTS-KE with each address, dialing the address and
// checking the certificate against the pool's name (as chronyd does), and
// polls each with authenticated NTP: three NTS sources, three sessions.
func TestUpstreamNTSPoolChrony(t *testing.T) {
	harness.RequireRoot(t, "a network namespace with a hosts file of its own")
	ip := harness.RequireBinary(t, "ip")
	ns := "tgpool-" + strconv.Itoa(os.Getpid()%100000)
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() { exec.Command(ip, "netns", "del", ns).Run() })
	if out, err := exec.Command(ip, "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v\n%s", ns, err, out)
	}
	etc := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	pool := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	hosts := "127.0.0.1 localhost\n"
	for _, a := range pool {
		hosts += a + " pool.test\n"
	}
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}

	cert, key := harness.WriteCertWith(t, t.TempDir(), harness.CertOptions{DNSNames: []string{"pool.test"}, IPs: []net.IP{}})
	up := harness.StartChrony(t, harness.ChronyOptions{Name: "nts-pool-server", LocalStratum: 3,
		NTSServerCert: cert, NTSServerKey: key, Netns: ns})
	bins := build.Binaries(t)
	conf := fmt.Sprintf("port %d\nntsport 0\nbindaddress 127.0.0.1\nratelimit off\nntstrustedcerts %s\nnosystemcert\nminsources 1\n"+
		"pool pool.test nts port %d ntsport %d iburst minpoll -4 maxpoll -4\n", harness.FreeUDPPort(t), cert, up.Port, up.NTSPort)
	tg := harness.StartTimegateWith(t, bins.Timegate, conf, harness.TimegateOptions{Args: []string{"-state", t.TempDir()}, Netns: ns})

	harness.WaitFor(t, 60*time.Second, func() (bool, string) {
		var rows []report.Source
		out, _, err := tg.Gatectl(t, bins.Gatectl, "sources", "-json")
		if err == nil {
			err = json.Unmarshal([]byte(out), &rows)
		}
		if err != nil {
			return false, "gatectl sources: " + err.Error()
		}
		var addrs []string
		for _, r := range rows {
			if r.Auth != "nts" || r.Name != "pool.test" || r.Cookies == 0 || r.Received < 2 || r.KEError != "" {
				return false, fmt.Sprintf("%+v", r)
			}
			h, _, _ := net.SplitHostPort(r.Address)
			addrs = append(addrs, h)
		}
		slices.Sort(addrs)
		return slices.Equal(addrs, pool), fmt.Sprintf("NTS sources at %v, want one per address of the pool %v", addrs, pool)
	})
	st := up.ServerStats(t)
	if st.NTSKEAccepted < uint64(len(pool)) || st.AuthNTPPackets == 0 || st.AuthNTPPackets != st.NTPPackets {
		t.Fatalf("chronyd: %d NTS-KE sessions, %d NTP packets of which %d authenticated: want one session per address and only NTS",
			st.NTSKEAccepted, st.NTPPackets, st.AuthNTPPackets)
	}
	t.Logf("chronyd: %d NTS-KE sessions, %d NTP packets, all authenticated", st.NTSKEAccepted, st.NTPPackets)
}
