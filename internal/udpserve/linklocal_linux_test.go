//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package udpserve

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"timegate/ntp"
	"timegate/tests/harness"
)

// TestLinkLocalReplyFromAddressAndLink: issue 13 item 5 for IPv6
// link-local. A veth pair joins this network namespace (tgA, with two
// link-local addresses besides its own automatic one) to a namespace the
// test creates (tgB). A client there, connected to each of tgA's addresses
// in turn, is answered: its connected socket takes only a reply from that
// very address, and a link-local address exists only on its link, so the
// reply must carry both the address asked and tgA's interface.
func TestLinkLocalReplyFromAddressAndLink(t *testing.T) {
	harness.RequireRoot(t, "creates a network namespace and a veth pair")
	ipBin := harness.RequireBinary(t, "ip")
	ns := fmt.Sprintf("tgll%d", os.Getpid())
	a, b := fmt.Sprintf("tgA%d", os.Getpid()%10000), fmt.Sprintf("tgB%d", os.Getpid()%10000)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command(ipBin, "netns", "del", ns).Run() })
	ip("link", "add", a, "type", "veth", "peer", "name", b)
	t.Cleanup(func() { exec.Command(ipBin, "link", "del", a).Run() })
	ip("link", "set", b, "netns", ns)
	ip("-6", "addr", "add", "fe80::a/64", "dev", a, "nodad")
	ip("-6", "addr", "add", "fe80::c/64", "dev", a, "nodad")
	ip("link", "set", a, "up")
	ip("netns", "exec", ns, "ip", "-6", "addr", "add", "fe80::b/64", "dev", b, "nodad")
	ip("netns", "exec", ns, "ip", "link", "set", b, "up")
	ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")

	port, stats := serve(t, netip.Addr{}, 2)
	for i, to := range []string{"fe80::a", "fe80::c"} {
		c := dialInNetns(t, ns, b, to, port)
		nonce := ntp.Time64(0x5eed0000 + uint64(i))
		var got []byte
		// The link may take a moment to carry traffic after it comes up.
		for try := 0; got == nil && try < 20; try++ {
			if _, err := c.Write(ntp.ClientRequest(nil, 4, 3, nonce)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1024)
			c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
			if n, err := c.Read(buf); err == nil {
				got = buf[:n]
			}
		}
		c.Close()
		if got == nil {
			t.Fatalf("no reply to a request to %s%%%s (replied so far: %d)", to, b, stats.Snapshot().Replied)
		}
		if p, err := ntp.Parse(got); err != nil || p.Header.Origin != nonce {
			t.Fatalf("reply from %s: %v %+v", to, err, p.Header)
		}
	}
}

// dialInNetns returns a UDP socket of namespace ns connected to
// [to%dev]:port. Sockets belong to the namespace they were made in, so the
// calling thread enters ns for the dial only.
func dialInNetns(t *testing.T, ns, dev, to string, port uint16) *net.UDPConn {
	t.Helper()
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer unix.Close(orig)
	target, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ifi, ierr := net.InterfaceByName(dev)
	var c *net.UDPConn
	if ierr == nil {
		c, err = net.DialUDP("udp6", nil, &net.UDPAddr{IP: net.ParseIP(to), Port: int(port), Zone: fmt.Sprint(ifi.Index)})
	}
	if serr := unix.Setns(orig, unix.CLONE_NEWNET); serr != nil {
		// Leave the thread locked: the runtime retires it with the
		// goroutine rather than reuse a thread in the wrong namespace.
		t.Fatalf("back to the test's namespace: %v", serr)
	}
	runtime.UnlockOSThread()
	if ierr != nil {
		t.Fatal(ierr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}
