package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseFull(t *testing.T) {
	text := `# a comment
! chrony comment
port 11123
ntsport 14460
bindaddress 127.0.0.1
bindaddress ::1
local stratum 7
keyfile /etc/timegate/keys   # trailing comment
ntsservercert /etc/timegate/cert.pem
ntsserverkey /etc/timegate/key.pem
ntstrustedcerts /etc/ca1.pem
ntstrustedcerts /etc/ca2.pem
ntsdumpdir /var/lib/timegate
ntsrotate 3600
ratelimit interval 1 burst 16 leak 3 kod prefix6 56
ntsratelimit interval 5 burst 4
clientloglimit 1048576
server nts.example.net nts iburst minpoll 4 maxpoll 8 ntsport 4461
server 192.0.2.10 key 7 prefer port 11124
pool pool.example.org iburst
minsources 2
maxdistance 1.5
authselectmode mix
holdover 600
restrict default kod nomodify notrap nopeer noquery
restrict 192.0.2.0 mask 255.255.255.0 nomodify notrap
ntpworkers 3
ntskenice 10
`
	c, err := Parse("t.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 11123 || c.NTSPort != 14460 || len(c.BindAddresses) != 2 || c.BindAddresses[1] != netip.MustParseAddr("::1") {
		t.Errorf("ports/bind: %+v", c)
	}
	if c.Local == nil || c.Local.Stratum != 7 || c.KeyFile != "/etc/timegate/keys" || len(c.NTSTrustedCerts) != 2 {
		t.Errorf("local/keyfile/certs: %+v", c)
	}
	if c.NTSRotate != time.Hour || c.ClientLogLimit != 1<<20 || c.NTPWorkers != 3 || c.MinSources != 2 || c.MaxDistance != 1500*time.Millisecond {
		t.Errorf("rotate/limits: %+v", c)
	}
	want := RateLimit{Enabled: true, Interval: 1, Burst: 16, Leak: 3, KoD: true, Prefix4: 32, Prefix6: 56}
	if c.RateLimit != want {
		t.Errorf("ratelimit = %+v, want %+v", c.RateLimit, want)
	}
	if len(c.Sources) != 3 {
		t.Fatalf("sources: %+v", c.Sources)
	}
	s := c.Sources[0]
	if !s.NTS || !s.IBurst || s.MinPoll != 4 || s.MaxPoll != 8 || s.NTSPort != 4461 || s.Pos.Line != 18 {
		t.Errorf("nts source: %+v", s)
	}
	if s := c.Sources[1]; s.KeyID != 7 || !s.Prefer || s.Port != 11124 || s.NTS {
		t.Errorf("keyed source: %+v", s)
	}
	if !c.Sources[2].Pool || c.AuthSelectMode != "mix" || c.Holdover != 10*time.Minute {
		t.Errorf("pool/authselectmode/holdover: %+v", c)
	}
	if len(c.Restrict) != 2 || c.Restrict[1].Pos.Line != 26 || strings.Join(c.Restrict[1].Args, " ") != "192.0.2.0 mask 255.255.255.0 nomodify notrap" {
		t.Errorf("restrict: %+v", c.Restrict)
	}
}

func TestClockControl(t *testing.T) {
	c, err := Parse("c", []byte("clockcontrol on\n"))
	if err != nil || !c.ClockControl {
		t.Fatalf("clockcontrol on: %v %+v", err, c)
	}
	if c, _ := Parse("c", nil); c.ClockControl {
		t.Error("the system clock must be left alone by default")
	}
	if _, err := Parse("c", []byte("clockcontrol maybe\n")); err == nil || !strings.Contains(err.Error(), "c:1: clockcontrol") {
		t.Errorf("bad value: %v", err)
	}
}

// TestTxLead: `txlead` is on unless switched off; anything but on or off
// is an error naming the line.
func TestTxLead(t *testing.T) {
	if c, _ := Parse("c", nil); !c.TxLead {
		t.Error("the transmit lead is off by default")
	}
	for conf, want := range map[string]bool{"txlead off\n": false, "txlead ON\n": true} {
		c, err := Parse("c", []byte(conf))
		if err != nil || c.TxLead != want {
			t.Errorf("%q: %v, TxLead %v", conf, err, c.TxLead)
		}
	}
	for _, bad := range []string{"txlead\n", "txlead 1\n", "txlead on off\n"} {
		if _, err := Parse("c", []byte(bad)); err == nil || !strings.Contains(err.Error(), "c:1: txlead") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("empty", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != DefaultPort || c.NTSPort != DefaultNTSPort || c.AuthSelectMode != "require" || c.MinSources != 3 || c.Local != nil {
		t.Errorf("defaults: %+v", c)
	}
}

func TestParseErrorsNameFileLineAndDirective(t *testing.T) {
	text := "port 70000\nfrobnicate yes\nratelimit burst 0\nlocal stratum 16\nport 1\nserver\nserver h minpoll 9 maxpoll 3\nserver h nts key 3\nntsservercert /x\nmaxdistance -1\nntpworkers 257\nntpworkers x\nntskenice 20\n"
	_, err := Parse("bad.conf", []byte(text))
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ErrConfig) {
		t.Errorf("not ErrConfig: %v", err)
	}
	for _, want := range []string{
		`bad.conf:1: port: port must be an integer 0..65535, got "70000"`,
		"bad.conf:2: frobnicate: unknown directive",
		`bad.conf:3: ratelimit burst: value must be an integer 1..255, got "0"`,
		`bad.conf:4: local: stratum must be an integer 1..15, got "16"`,
		"bad.conf:5: port: already set at line 1",
		"bad.conf:6: server: needs a host name or address",
		"bad.conf:7: server: h: minpoll 9 above maxpoll 3",
		"bad.conf:8: server: h: nts and key are exclusive",
		"bad.conf: ntsservercert and ntsserverkey must be given together",
		"bad.conf:10: maxdistance: must be a number of seconds",
		`bad.conf:11: ntpworkers: worker count must be an integer 0..256, got "257"`,
		"bad.conf:12: ntpworkers: already set at line 11",
		`bad.conf:13: ntskenice: must be idle or a nice value 0..19, got "20"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("port 123\nserver a nts iburst\nrestrict default kod\n"))
	f.Add([]byte("ratelimit interval -19 burst 255 leak 4 kod\nlocal stratum 3 orphan\n"))
	f.Add([]byte("#x\n!y\n;z\nbindaddress ::1\n"))
	f.Add([]byte("allow 192.168\ndeny all 10/8\ntos minsane 2 maxclock 4\nserver 127.127.1.0\nfudge 127.127.1.0 stratum 9\n"))
	f.Add([]byte("keys k\ntrustedkey 1 (3 ... 5)\ninterface listen 127.0.0.1\nserver a maxdelay 0.1 xleave noselect\nrtcsync\nrestrict h.example ignore\n"))
	f.Add([]byte("driftfile /var/lib/chrony/drift\ndumpdir d\nlogdir l\nlog measurements rawmeasurements selection\nmakestep 1.0 -1\nserver a key 1 trust require\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz", data)
		if c != nil {
			// Every warning names this file (or a file it included, which
			// exists) and a line of it: none is silent or unplaceable.
			for _, w := range c.Warnings {
				_, statErr := os.Stat(w.Pos.File)
				if (w.Pos.File != "fuzz" && statErr != nil) || w.Pos.Line < 0 || w.Directive == "" || w.Msg == "" {
					t.Fatalf("warning without position or reason: %+v", w)
				}
			}
		}
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not wrapping ErrConfig: %v", err)
			}
			return
		}
		if c.Port < 0 || c.Port > 65535 || c.MinSources < 1 || len(c.Sources) > maxSources {
			t.Fatalf("accepted out-of-range config: %+v", c)
		}
		for _, s := range c.Sources {
			if s.MinPoll > s.MaxPoll || (s.NTS && s.KeyID != 0) {
				t.Fatalf("accepted bad source %+v", s)
			}
		}
	})
}

// Campaign finding: `maxdistance nan` and `holdover nan` passed
// -check-config (NaN fails every comparison, so the range check let it
// through) and silently became defaults. NaN and infinities are refused
// wherever seconds are parsed; `holdover 0` stays 0 (no holdover).
func TestSecondsRefuseNaNAndInf(t *testing.T) {
	for _, line := range []string{"maxdistance nan", "holdover nan", "holdover NaN", "holdover inf", "maxdistance +Inf", "holdover -inf"} {
		if _, err := Parse("t.conf", []byte(line+"\n")); err == nil || !strings.Contains(err.Error(), "number of seconds") {
			t.Errorf("%q: err = %v, want a refusal", line, err)
		}
	}
	c, err := Parse("t.conf", []byte("holdover 0\n"))
	if err != nil || c.Holdover != 0 {
		t.Fatalf("holdover 0: %v, %v", c.Holdover, err)
	}
}

// Campaign findings: a 200 MB config was read whole on SIGHUP, and a FIFO
// as the config path blocked the signal loop. Load refuses both at once.
func TestLoadRefusesFIFOAndOversize(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("FIFO: err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), maxFileSize/10+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversize: err = %v", err)
	}
}

// At most maxReported errors are reported, then a count: a file of half a
// million bad lines must not become one enormous log line.
func TestErrorsCapped(t *testing.T) {
	_, err := Parse("t.conf", bytes.Repeat([]byte("bogus directive\n"), 1000))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	if n := strings.Count(msg, "\n") + 1; n != maxReported+1 || !strings.Contains(msg, fmt.Sprintf("%d more errors not shown", 1000-maxReported)) {
		t.Fatalf("%d lines; ending %q", n, msg[max(0, len(msg)-100):])
	}
}

// The hardening options of issue 11: maxstartoffset and keytypes.
func TestHardeningDirectives(t *testing.T) {
	c, err := Parse("t.conf", []byte("maxstartoffset 2.5\nkeytypes cmac\n"))
	if err != nil || c.MaxStartOffset != 2500*time.Millisecond || !c.CMACOnly {
		t.Fatalf("%v: %+v", err, c)
	}
	if c := Defaults(); c.MaxStartOffset != 0 || c.CMACOnly {
		t.Fatalf("defaults: maxstartoffset %v, cmac only %v", c.MaxStartOffset, c.CMACOnly)
	}
	for _, bad := range []string{"maxstartoffset nan", "maxstartoffset 1001", "maxstartoffset -1", "keytypes md5", "keytypes", "keytypes cmac\nkeytypes any"} {
		if _, err := Parse("t.conf", []byte(bad+"\n")); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestNTPRcvBuf: `ntprcvbuf` takes 0 or a byte count within its bounds,
// defaults to DefaultNTPRcvBuf, and an error names file, line and key.
func TestNTPRcvBuf(t *testing.T) {
	if c, err := Parse("empty", nil); err != nil || c.NTPRcvBuf != DefaultNTPRcvBuf {
		t.Fatalf("default: %v %d", err, c.NTPRcvBuf)
	}
	for text, want := range map[string]int{
		"ntprcvbuf 0\n":         0,
		"ntprcvbuf 65536\n":     MinNTPRcvBuf,
		"ntprcvbuf 8388608\n":   8 << 20,
		"ntprcvbuf 268435456\n": MaxNTPRcvBuf,
	} {
		c, err := Parse("r.conf", []byte(text))
		if err != nil || c.NTPRcvBuf != want {
			t.Errorf("%q: %v, %d, want %d", text, err, c.NTPRcvBuf, want)
		}
	}
	for text, want := range map[string]string{
		"port 123\nntprcvbuf 65535\n":    `r.conf:2: ntprcvbuf: must be 0 (the kernel's default) or a byte count 65536..268435456, got "65535"`,
		"ntprcvbuf 268435457\n":          `r.conf:1: ntprcvbuf: must be 0 (the kernel's default) or a byte count 65536..268435456, got "268435457"`,
		"ntprcvbuf 4M\n":                 `r.conf:1: ntprcvbuf: must be 0 (the kernel's default) or a byte count 65536..268435456, got "4M"`,
		"ntprcvbuf -1\n":                 `r.conf:1: ntprcvbuf: must be 0`,
		"ntprcvbuf\n":                    `r.conf:1: ntprcvbuf:`,
		"ntprcvbuf 65536\nntprcvbuf 0\n": "r.conf:2: ntprcvbuf: already set at line 1",
	} {
		_, err := Parse("r.conf", []byte(text))
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", text, err, want)
		}
	}
}
