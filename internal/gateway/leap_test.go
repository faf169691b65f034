package gateway

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"timegate/internal/config"
	"timegate/leap"
	"timegate/ntp"
)

// The smoothing port answers only the networks smoothallow names, with the
// smoothed state; the NTP port keeps serving true time to everyone.
func TestSmoothPortOnlyForNamedNetworks(t *testing.T) {
	for _, c := range []struct {
		allow  string
		answer bool
	}{{"127.0.0.0/8", true}, {"10.0.0.0/8 192.0.2.1", false}} {
		sp := freePort(t, "udp")
		g, _ := newTestGateway(t, "port 0\nntsport 0\nlocal stratum 9\nsmoothtime 400 0.001 leaponly\nsmoothport "+
			strconv.Itoa(sp)+"\nsmoothallow "+c.allow+"\n")
		marked := *g.state.Load()
		marked.RefID = refIDSmoothMark
		g.smoothState.Store(&marked)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		h, ok := query(t, "127.0.0.1:"+strconv.Itoa(sp))
		if ok != c.answer {
			t.Errorf("smoothallow %s: answered %v", c.allow, ok)
		}
		if ok && h.RefID != refIDSmoothMark {
			t.Errorf("smoothing port served refid %#x, not the smoothed state", h.RefID)
		}
		port := g.udp[0][0].LocalAddr().(*net.UDPAddr).Port
		if h, ok := query(t, "127.0.0.1:"+strconv.Itoa(port)); !ok || h.RefID == refIDSmoothMark {
			t.Errorf("NTP port: answered %v refid %#x", ok, h.RefID)
		}
		cancel()
		<-done
	}
}

const refIDSmoothMark = 0x7f7f01ff

func query(t *testing.T, addr string) (ntp.Header, bool) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := ntp.Header{Version: 4, Mode: ntp.ModeClient, Transmit: 0x1234}
	buf := make([]byte, 128)
	for range 10 {
		c.Write(req.Append(nil))
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			h, err := ntp.DecodeHeader(buf[:n])
			return h, err == nil
		}
	}
	return ntp.Header{}, false
}

func TestSmoothGate(t *testing.T) {
	g := &smoothGate{allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	if a := g.Admit(netip.MustParseAddr("192.0.2.9"), time.Now(), ntp.AuthNone); a.Action != ntp.ActionReply {
		t.Errorf("allowed network: %+v", a)
	}
	if a := g.Admit(netip.MustParseAddr("198.51.100.1"), time.Now(), ntp.AuthNone); a.Action != ntp.ActionDrop || a.Reason != ntp.ReasonPolicy {
		t.Errorf("other network: %+v", a)
	}
}

// A tampered table stops the start with file:line; an expired one loads
// with a warning; a reload with a bad table keeps the old one.
func TestLeapTableLoading(t *testing.T) {
	good, err := os.ReadFile("../../leap/testdata/leap-seconds.list")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "leap.list")
	bad := strings.Replace(string(good), "3692217600      37", "3692217600      38", 1)
	os.WriteFile(file, []byte(bad), 0o644)
	cfg, err := config.Parse("t.conf", []byte("port 1\nleapfile "+file+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readLeap(cfg); !errors.Is(err, leap.ErrHash) || !strings.Contains(err.Error(), "t.conf:2: leapfile") {
		t.Fatalf("tampered: %v", err)
	}

	os.WriteFile(file, good, 0o644)
	g, _ := newTestGateway(t, "port 0\nntsport 0\nlocal stratum 9\nleapfile "+file+"\n")
	st, ok := g.LeapTableStatus()
	if !ok || st.Entries != 28 || st.Expired != time.Now().After(st.Expires) {
		t.Fatalf("status %+v", st)
	}
	if st.Expired && !strings.Contains(strings.Join(g.loaded.Load().warnings, "\n"), "expired on 2026-06-28") {
		t.Errorf("expired table without a warning: %q", g.loaded.Load().warnings)
	}
	os.WriteFile(file, []byte(bad), 0o644)
	if err := g.Reload(); !errors.Is(err, leap.ErrHash) {
		t.Fatalf("reload with a tampered table: %v", err)
	}
	if st2, _ := g.LeapTableStatus(); st2.Entries != 28 {
		t.Error("the old table was dropped")
	}
}
