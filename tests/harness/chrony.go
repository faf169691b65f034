package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// socketFailure matches chronyd 4.3's complaint about a port it could not bind
// ("Could not open NTP socket on 0.0.0.0:P", "Could not open NTS-KE socket on
// 0.0.0.0:K"); chronyd then keeps running without that socket.
var socketFailure = regexp.MustCompile(`Could not open [^\n]*socket[^\n]*`)

// startAttempts bounds how often StartChrony picks new ports after losing a
// port it chose to another process.
const startAttempts = 3

// errPortTaken marks a start that failed because a chosen port was taken.
var errPortTaken = errors.New("port taken")

// PollRange is a server line's minpoll and maxpoll, as log2 seconds.
type PollRange struct{ Min, Max int }

// ServerLine is one `server` directive of a chrony (or timegate) configuration.
type ServerLine struct {
	Host    string // default 127.0.0.1; chrony 4.3 keeps one source per IP address, whatever the port
	Port    int    // NTP port
	NTS     bool
	NTSPort int    // NTS-KE port; 0 leaves chrony's default (4460)
	Key     uint32 // symmetric key ID from the keyfile; 0 for none
	// Poll defaults to minpoll -6 maxpoll -4, which settles at 1/16 s on loopback
	// and selects a source within about 2 s. Use {0, 0} (1 s) when cookies must
	// survive a server restart: at 1/16 s polls chrony spends all 8 cookies
	// within half a second of downtime.
	Poll    *PollRange
	Options []string // more options: prefer, noselect, maxdelay 0.1, ...
}

// String renders the line:
// `server 127.0.0.1 port P iburst minpoll -6 maxpoll -4 [nts [ntsport K]] [key ID] [options]`.
func (s ServerLine) String() string {
	host := s.Host
	if host == "" {
		host = "127.0.0.1"
	}
	poll := PollRange{-6, -4}
	if s.Poll != nil {
		poll = *s.Poll
	}
	f := []string{"server", host, "port", strconv.Itoa(s.Port), "iburst",
		"minpoll", strconv.Itoa(poll.Min), "maxpoll", strconv.Itoa(poll.Max)}
	if s.NTS {
		f = append(f, "nts")
		if s.NTSPort != 0 {
			f = append(f, "ntsport", strconv.Itoa(s.NTSPort))
		}
	}
	if s.Key != 0 {
		f = append(f, "key", strconv.FormatUint(uint64(s.Key), 10))
	}
	return strings.Join(append(f, s.Options...), " ")
}

// ChronyOptions configure one chronyd. An instance is a client when it has
// Servers and a server when Serve, LocalStratum or NTSServerCert is set; it can
// be both (the chain tests).
type ChronyOptions struct {
	Name string // label in messages and logs; default "chronyd"

	// Client side.
	Servers     []ServerLine
	TrustedCert string // ntstrustedcerts FILE, with nosystemcert
	KeyFile     string // keyfile FILE (both sides)

	// Server side.
	Serve         bool
	LocalStratum  int    // local stratum N when > 0
	Port          int    // served NTP port; 0 picks a free one (when serving)
	NTSServerCert string // ntsservercert; with NTSServerKey it opens the NTS-KE port
	NTSServerKey  string
	NTSPort       int // served NTS-KE port; 0 picks a free one (with NTSServerCert)

	ExtraConfig []string // appended verbatim, one directive per element
	// Shift, when not zero, makes an upstream that serves true time + Shift seconds
	// (a falseticker, or a known shift for accuracy measurements): StartChrony first
	// starts an honest reference chronyd bound to 127.0.0.2 (`local stratum`
	// LocalStratum − 1, at least 1), then this one as its client with `offset Shift`
	// and without `local`, and returns once it is synchronised to the reference.
	// chronyd -x applies its corrections to every timestamp it serves, receive and
	// transmit alike, so the shift is clean: a normal delay and exactly Shift of
	// offset. (libfaketime shifts only what chronyd reads with clock_gettime, not the
	// kernel's receive timestamps: its replies carry an honest receive and a shifted
	// transmit timestamp, which looks like half the shift with a negative delay.)
	Shift float64
	// Netns runs chronyd in this network namespace (`ip netns exec NS`); chronyc
	// reaches it through its Unix command socket regardless.
	Netns string
	// Reference is the honest chronyd a Shift instance follows (set by StartChrony).
	Reference *Chrony
}

func (o ChronyOptions) serving() bool {
	return o.Serve || o.LocalStratum > 0 || o.NTSServerCert != ""
}

// Chrony is a running chronyd.
type Chrony struct {
	*Process
	Options ChronyOptions
	Socket  string // command socket, for chronyc -h
	Port    int    // served NTP port, 0 when not serving
	NTSPort int    // served NTS-KE port, 0 without NTS

	chronyc string
}

// StartChrony starts a chronyd as described in the package comment and returns
// when its command socket answers and it holds the ports it serves. It fails the
// test if chronyd cannot start, and skips it (fails under CI=true) when chronyd,
// chronyc or root are missing.
func StartChrony(t testing.TB, o ChronyOptions) *Chrony {
	t.Helper()
	chronyd := RequireBinary(t, "chronyd")
	chronyc := RequireBinary(t, "chronyc")
	RequireRoot(t, "chronyd 4.3 refuses to start as another user (\"Fatal error : Not superuser\")")
	var env []string
	if o.Name == "" {
		o.Name = "chronyd"
	}
	if o.Shift != 0 {
		return startShifted(t, o)
	}
	if o.NTSServerCert != "" && o.NTSServerKey == "" || o.NTSServerCert == "" && o.NTSServerKey != "" {
		t.Fatalf("%s: NTSServerCert and NTSServerKey go together (chronyd opens no NTS-KE port with one)", o.Name)
	}

	c := &Chrony{Process: newProcess(t, o.Name, "chrony"), Options: o, chronyc: chronyc}
	t.Cleanup(func() { // runs before the stop that newProcess registered
		if t.Failed() {
			c.logReports(t)
		}
	})
	c.ConfPath = filepath.Join(c.Dir, "chrony.conf")
	c.Socket = filepath.Join(c.Dir, "run", "chronyd.sock")
	for _, sub := range []string{"dump", "nts", "log"} {
		if err := os.Mkdir(filepath.Join(c.Dir, sub), 0o755); err != nil {
			t.Fatalf("%s: %v", o.Name, err)
		}
	}
	c.path, c.args, c.env = chronyd, []string{"-x", "-d", "-u", "root", "-f", c.ConfPath}, env
	if setpriv, ok := LookBinary("setpriv"); ok {
		c.path = setpriv
		c.args = append([]string{"--bounding-set", "-sys_time", "--inh-caps", "-sys_time", chronyd}, c.args...)
	} else {
		t.Logf("%s: setpriv not found; chronyd runs with -x only", o.Name)
	}
	if o.Netns != "" {
		c.path, c.args = inNetns(t, o.Netns, c.path, c.args)
	}
	c.ready = c.readiness

	for attempt := 1; ; attempt++ {
		c.Port, c.NTSPort = o.Port, o.NTSPort
		if o.serving() && c.Port == 0 {
			c.Port = FreeUDPPort(t)
		}
		if o.NTSServerCert != "" && c.NTSPort == 0 {
			c.NTSPort = FreeTCPPort(t)
		}
		if err := os.WriteFile(c.ConfPath, []byte(c.config()), 0o644); err != nil {
			t.Fatalf("%s: %v", o.Name, err)
		}
		err := c.start(readyTimeout)
		if err == nil {
			return c
		}
		stopErr := c.Stop()
		autoPorts := o.serving() && o.Port == 0 && (o.NTSServerCert == "" || o.NTSPort == 0)
		if errors.Is(err, errPortTaken) && autoPorts && attempt < startAttempts {
			t.Logf("%s: %v; trying other ports", o.Name, err)
			continue
		}
		t.Fatalf("%v", errors.Join(err, stopErr))
	}
}

// config renders chrony.conf.
func (c *Chrony) config() string {
	o := c.Options
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# %s, written by timegate/tests/harness", o.Name)
	line("pidfile %s", filepath.Join(c.Dir, "chronyd.pid"))
	line("bindcmdaddress %s", c.Socket)
	line("cmdport 0")
	line("dumpdir %s", filepath.Join(c.Dir, "dump"))
	line("ntsdumpdir %s", filepath.Join(c.Dir, "nts"))
	line("logdir %s", filepath.Join(c.Dir, "log"))
	line("port %d", c.Port) // 0: no NTP server socket
	if o.serving() {
		line("allow 127.0.0.0/8")
		line("allow ::1")
	}
	if o.LocalStratum > 0 {
		line("local stratum %d", o.LocalStratum)
	}
	if o.NTSServerCert != "" {
		line("ntsservercert %s", o.NTSServerCert)
		line("ntsserverkey %s", o.NTSServerKey)
		line("ntsport %d", c.NTSPort)
	}
	if o.TrustedCert != "" {
		line("ntstrustedcerts %s", o.TrustedCert)
		line("nosystemcert")
	}
	if o.KeyFile != "" {
		line("keyfile %s", o.KeyFile)
	}
	for _, s := range o.Servers {
		line("%s", s)
	}
	for _, x := range o.ExtraConfig {
		line("%s", x)
	}
	return b.String()
}

// readiness: the command socket answers and the served ports are held; a log
// line saying a socket could not be opened ends the wait at once.
func (c *Chrony) readiness() (bool, string, error) {
	if l := socketFailure.FindString(lastRun(c.Log())); l != "" {
		return false, "", fmt.Errorf("%w: chronyd says %q", errPortTaken, l)
	}
	if _, err := c.chronycOutput("tracking"); err != nil {
		return false, "command socket: " + err.Error(), nil
	}
	ok, status := portsStatus(c.Pid(), []int{c.Port}, []int{c.NTSPort})
	return ok, status, nil
}

// Server returns a server line that reaches this instance on 127.0.0.1, with NTS
// when it serves NTS.
func (c *Chrony) Server() ServerLine {
	return ServerLine{Port: c.Port, NTS: c.NTSPort != 0, NTSPort: c.NTSPort}
}

// Addr returns the served NTP address, 127.0.0.1:Port.
func (c *Chrony) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)) }

// startShifted starts the honest reference of a Shift instance, then the instance
// itself as the reference's client, and waits until it serves the shifted time.
func startShifted(t testing.TB, o ChronyOptions) *Chrony {
	t.Helper()
	ref := StartChrony(t, ChronyOptions{
		Name: o.Name + " reference", LocalStratum: max(o.LocalStratum-1, 1), Netns: o.Netns,
		// 127.0.0.2: a server whose reference ID were 127.0.0.1 would look like a
		// synchronisation loop to a chronyd client on 127.0.0.1.
		ExtraConfig: []string{"bindaddress 127.0.0.2", "allow 127.0.0.2"},
	})
	o.Reference = ref
	o.Serve = true
	o.LocalStratum = 0
	line := ServerLine{Host: "127.0.0.2", Port: ref.Port, Options: []string{"offset", strconv.FormatFloat(o.Shift, 'f', -1, 64)}}
	o.Servers = append([]ServerLine{line}, o.Servers...)
	// No makestep: chronyd -x's null clock driver takes a slew at once, but drops a step.
	shift := o.Shift
	o.Shift = 0
	c := StartChrony(t, o)
	c.Options.Shift = shift
	WaitFor(t, 60*time.Second, func() (bool, string) {
		tr, err := c.tryTracking()
		if err != nil {
			return false, err.Error()
		}
		return tr.RefID == "7F000002" && tr.Stratum > 0 && tr.Leap == "Normal", fmt.Sprintf("tracking %+v", tr)
	})
	return c
}
