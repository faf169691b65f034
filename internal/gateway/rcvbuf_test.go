package gateway

import (
	"net"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"timegate/internal/config"
	"timegate/internal/udpserve"
)

// TestRcvBufShortfallWarnsOnce: a socket the kernel gave less than
// `ntprcvbuf` asks (here one left at the kernel's default) is reported in
// one warning that names the sysctl to raise and the directive's line,
// however many socket groups are short.
func TestRcvBufShortfallWarnsOnce(t *testing.T) {
	cfg, g, c, granted, logs := rcvBufFixture(t, "port 123\nntprcvbuf 268435456\n", zapcore.WarnLevel)
	core := g.log.Core()
	for range 2 {
		if got := g.checkRcvBuf(cfg, c); got != granted {
			t.Errorf("checkRcvBuf = %d, want %d", got, granted)
		}
	}
	all := logs.All()
	if len(all) != 1 {
		t.Fatalf("%d warnings, want 1: %v", len(all), all)
	}
	ctx := all[0].ContextMap()
	if !strings.Contains(all[0].Message, "net.core.rmem_max") || ctx["directive"] != "t.conf:2" || ctx["configured"] != int64(config.MaxNTPRcvBuf) {
		t.Errorf("warning %q %v", all[0].Message, ctx)
	}
	// Asking for no more than the socket has: no warning.
	g2 := &Gateway{log: zap.New(core)}
	cfg.NTPRcvBuf = granted
	g2.checkRcvBuf(cfg, c)
	if n := len(logs.All()); n != 1 {
		t.Errorf("%d warnings after a socket with what it asked for", n)
	}
}

// TestNTPRcvBufRestartOnly: a reload that changes ntprcvbuf says that it
// takes effect only after a restart, naming the line.
func TestNTPRcvBufRestartOnly(t *testing.T) {
	old, _ := config.Parse("t.conf", []byte("port 123\n"))
	cur, err := config.Parse("t.conf", []byte("port 123\nntprcvbuf 8388608\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := notApplied(old, cur)
	if len(w) != 1 || w[0] != "t.conf:2: ntprcvbuf changed: takes effect only after a restart" {
		t.Errorf("reload warnings %q", w)
	}
}

// TestTxLeadRestartOnly: switching the transmit lead takes a restart (the
// workers learn and apply it), and a reload says so.
func TestTxLeadRestartOnly(t *testing.T) {
	old, _ := config.Parse("t.conf", []byte("port 123\n"))
	cur, err := config.Parse("t.conf", []byte("port 123\ntxlead off\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := notApplied(old, cur); len(w) != 1 || w[0] != "t.conf:2: txlead changed: takes effect only after a restart" {
		t.Errorf("reload warnings %q", w)
	}
}

// TestGatewaySocketsGetNTPRcvBuf: the sockets a gateway opens have the
// receive buffer `ntprcvbuf` names (within rmem_max, so that no privilege
// is needed), each worker's, and the default 4 MiB without the line.
func TestGatewaySocketsGetNTPRcvBuf(t *testing.T) {
	g, _ := newTestGateway(t, "port 0\nntsport 0\nntpworkers 2\nntprcvbuf 131072\n")
	if len(g.udp) != 1 || len(g.udp[0]) != 2 {
		t.Fatalf("socket groups %v", g.udp)
	}
	for i, c := range g.udp[0] {
		got, err := udpserve.ReceiveBuffer(c)
		if err != nil {
			t.Skipf("receive buffer not readable here: %v", err)
		}
		if got != 131072 {
			t.Errorf("socket %d: receive buffer %d, want 131072", i, got)
		}
	}
	// The default: granted whole (root, or rmem_max large enough), or
	// capped with a note.
	g, _ = newTestGateway(t, "port 0\nntsport 0\n")
	got, _ := udpserve.ReceiveBuffer(g.udp[0][0])
	if got > config.DefaultNTPRcvBuf || g.rcvBufWarned != (got < config.DefaultNTPRcvBuf) {
		t.Errorf("default: granted %d of %d, reported %v", got, config.DefaultNTPRcvBuf, g.rcvBufWarned)
	}
}

// TestRcvBufDefaultShortfallIsANote: when the default size is capped (an
// unprivileged unit on a stock kernel) the gateway says so at info level,
// not as a warning at every start.
func TestRcvBufDefaultShortfallIsANote(t *testing.T) {
	cfg, g, c, granted, logs := rcvBufFixture(t, "port 123\n", zapcore.InfoLevel)
	cfg.NTPRcvBuf = granted + 1 // the default, unmet
	g.checkRcvBuf(cfg, c)
	all := logs.All()
	if len(all) != 1 || all[0].Level != zapcore.InfoLevel {
		t.Fatalf("logs %v: want one info note", all)
	}
}

// rcvBufFixture parses conf, and makes a gateway logging at level and
// above into logs and a loopback socket left at the kernel's default
// receive buffer (granted).
func rcvBufFixture(t *testing.T, conf string, level zapcore.Level) (*config.Config, *Gateway, *net.UDPConn, int, *observer.ObservedLogs) {
	t.Helper()
	cfg, err := config.Parse("t.conf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(level)
	g := &Gateway{log: zap.New(core)}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	granted, err := udpserve.ReceiveBuffer(c)
	if err != nil {
		t.Skipf("receive buffer not readable here: %v", err)
	}
	return cfg, g, c, granted, logs
}
