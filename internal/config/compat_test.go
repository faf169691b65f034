package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("t.conf", []byte(text))
	if err != nil {
		t.Fatalf("Parse:\n%s\n%v", text, err)
	}
	return c
}

func parseErr(t *testing.T, text, want string) {
	t.Helper()
	_, err := Parse("t.conf", []byte(text))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse(%q) = %v, want an error containing %q", text, err, want)
	}
}

func warningsText(c *Config) string {
	var b strings.Builder
	for _, w := range c.Warnings {
		b.WriteString(w.String() + "\n")
	}
	return b.String()
}

func restrictArgs(c *Config) []string {
	var out []string
	for _, r := range c.Restrict {
		out = append(out, strings.Join(r.Args, " "))
	}
	return out
}

// chrony's allow/deny become restrict rules; `all` drops the more specific
// rules it covers, as in chrony; what no line covers is denied.
func TestChronyAllowDeny(t *testing.T) {
	c := mustParse(t, "allow 192.168\nallow 10.0.0.0/8\ndeny 10.1.0.0/16\nallow all 10.0.0.0/8\ndeny 2001:db8::/32\nallow ::1\n")
	want := []string{"192.168.0.0/16 limited", "10.0.0.0/8 limited", "2001:db8::/32 ignore", "::1/128 limited", "default ignore"}
	if got := restrictArgs(c); !slices.Equal(got, want) {
		t.Errorf("rules %q, want %q", got, want)
	}
	if got := restrictArgs(mustParse(t, "allow\n")); !slices.Equal(got, []string{"default limited"}) {
		t.Errorf("allow alone: %q", got)
	}
	// An explicit restrict default keeps its meaning.
	c = mustParse(t, "restrict default kod\nallow 10\n")
	if got := restrictArgs(c); !slices.Equal(got, []string{"default kod", "10.0.0.0/8 limited"}) {
		t.Errorf("with restrict default: %q", got)
	}
	parseErr(t, "allow ntp.example.net\n", "t.conf:1: allow: not an address")
	parseErr(t, "deny 1.2.3.4.5\n", "t.conf:1: deny")
	parseErr(t, "allow 10/33\n", "t.conf:1: allow")
}

// ntpd's local clock driver is timegate's local stratum, never a network
// server; other reference clocks add nothing, with a warning.
func TestNtpdLocalClock(t *testing.T) {
	c := mustParse(t, "server 127.127.1.0\nfudge 127.127.1.0 stratum 10\n")
	if c.Local == nil || c.Local.Stratum != 10 || len(c.Sources) != 0 {
		t.Errorf("local %+v, %d sources", c.Local, len(c.Sources))
	}
	if c = mustParse(t, "server 127.127.1.0\n"); c.Local == nil || c.Local.Stratum != ntpdLocalStratum {
		t.Errorf("without fudge: %+v", c.Local)
	}
	c = mustParse(t, "server 127.127.20.0 mode 1\nfudge 127.127.20.0 refid GPS\n")
	if c.Local != nil || len(c.Sources) != 0 || len(c.Warnings) != 2 {
		t.Errorf("NMEA driver: local %+v, sources %d, warnings:\n%s", c.Local, len(c.Sources), warningsText(c))
	}
	parseErr(t, "local stratum 8\nserver 127.127.1.0\n", "t.conf:2: server: ntpd's local clock")
	parseErr(t, "tos orphan 10\n", "write `local stratum 10 orphan`")
}

func TestTos(t *testing.T) {
	c := mustParse(t, "tos minclock 4 minsane 2\ntos maxdist 1.5 maxclock 11\n")
	if c.MinSources != 2 || c.MaxDistance != 1500*time.Millisecond {
		t.Errorf("minsources %d maxdistance %v", c.MinSources, c.MaxDistance)
	}
	if w := warningsText(c); strings.Count(w, "\n") != 2 || !strings.Contains(w, "t.conf:1: tos: minclock 4") {
		t.Errorf("warnings:\n%s", w)
	}
	parseErr(t, "minsources 2\ntos minsane 3\n", "t.conf:2: tos minsane: minsources already set at t.conf:1")
	parseErr(t, "tos minsane\n", "pairs")
	parseErr(t, "tos frob 1\n", "unknown option")
}

func TestKeysAndTrustedKey(t *testing.T) {
	c := mustParse(t, "keys /etc/ntp/keys\ntrustedkey 1 2 (5 ... 7)\ntrustedkey 9\n")
	if c.KeyFile != "/etc/ntp/keys" || !slices.Equal(c.TrustedKeys, []uint32{1, 2, 5, 6, 7, 9}) {
		t.Errorf("keyfile %q trusted %v", c.KeyFile, c.TrustedKeys)
	}
	if c := mustParse(t, "keys k\n"); c.TrustedKeys != nil {
		t.Error("no trustedkey line must mean every key")
	}
	parseErr(t, "keyfile a\nkeys b\n", "keyfile already set")
	parseErr(t, "trustedkey (1 ... 100000)\n", "range")
	parseErr(t, "trustedkey 0\n", "key ID")
}

// TestKeyIDRange: key IDs are 32-bit, 1..4294967295, on every platform (an int
// bound failed to compile on 32-bit ones), and a range that ends at the top ends.
func TestKeyIDRange(t *testing.T) {
	c := mustParse(t, "trustedkey (4294967293 ... 4294967295)\nserver 10.0.0.1 key 4294967295\n")
	if !slices.Equal(c.TrustedKeys, []uint32{4294967293, 4294967294, 4294967295}) || c.Sources[0].KeyID != 4294967295 {
		t.Errorf("trusted %v, source key %d", c.TrustedKeys, c.Sources[0].KeyID)
	}
	parseErr(t, "trustedkey 4294967296\n", "key ID must be an integer 1..4294967295")
	parseErr(t, "server 10.0.0.1 key 4294967296\n", "key ID must be an integer 1..4294967295")
	parseErr(t, "server 10.0.0.1 key 0\n", "key ID")
	parseErr(t, "server 10.0.0.1 key -1\n", "key ID")
}

func TestInterface(t *testing.T) {
	c := mustParse(t, "interface ignore wildcard\ninterface listen 127.0.0.1\nnic listen ::1\ninterface listen all\n")
	if len(c.BindAddresses) != 2 || len(c.Warnings) != 0 {
		t.Errorf("bind %v warnings:\n%s", c.BindAddresses, warningsText(c))
	}
	if c := mustParse(t, "interface ignore wildcard\n"); len(c.Warnings) != 1 {
		t.Errorf("ignore wildcard alone: %s", warningsText(c))
	}
	parseErr(t, "interface listen eth0\n", "bindaddress ADDR")
	parseErr(t, "interface ignore ipv6\n", "cannot exclude")
	parseErr(t, "interface drop 10.0.0.1\n", "cannot exclude")
}

func TestSourceOptions(t *testing.T) {
	c := mustParse(t, "server a maxdelay 0.05 version 3 burst xleave offset 0.1\npool p maxsources 2 iburst\nserver b noselect\nserver c dynamic\n")
	if len(c.Sources) != 3 {
		t.Fatalf("%d sources, want 3 (noselect is not polled)", len(c.Sources))
	}
	a, p := c.Sources[0], c.Sources[1]
	if a.MaxDelay != 50*time.Millisecond || a.Version != 3 || p.MaxSources != 2 || !a.XLeave || p.XLeave {
		t.Errorf("a %+v p %+v", a, p)
	}
	w := warningsText(c)
	if strings.Contains(warningsText(c), "xleave") {
		t.Errorf("xleave is implemented, yet warned about:\n%s", warningsText(c))
	}
	for _, want := range []string{"t.conf:1: server: a: no effect: burst (", "offset 0.1 (", "t.conf:3: server: b: noselect", "t.conf:4: server: c: no effect: dynamic"} {
		if !strings.Contains(w, want) {
			t.Errorf("missing %q in:\n%s", want, w)
		}
	}
	parseErr(t, "server a frobnicate 1\n", `unknown option "frobnicate"`)
	parseErr(t, "server a maxsources 2\n", "pool lines only")
	parseErr(t, "server a nts version 3\n", "NTPv4 only")
}

// Every directive of chrony 4.x's and ntpd/NTPsec's manuals is known: none
// is an unknown directive, and those without effect warn exactly once,
// naming the line.
func TestEveryDirectiveKnown(t *testing.T) {
	chrony := "acquisitionport allow authselectmode bindacqaddress bindacqdevice bindaddress " +
		"binddevice broadcast clientloglimit clockprecision cmdallow cmddeny cmdport cmdratelimit " +
		"combinelimit confdir corrtimeratio deny driftfile dscp dumpdir dumponexit fallbackdrift " +
		"hwclockfile hwtimestamp hwtstimeout include initstepslew keyfile leapsecmode leapsectz " +
		"leapseclist local log logbanner logchange logdir mailonchange makestep manual maxchange " +
		"maxclockerror maxdistance maxdrift maxjitter maxntsconnections maxsamples maxslewrate " +
		"maxstratum maxupdateskew maxtxbuffers minsamples minsources minstratum nocerttimecheck " +
		"noclientlog nosystemcert ntpsigndsocket ntsratelimit ntscachedir ntsdumpdir ntsntpserver " +
		"ntsport ntsprocesses ntsrefresh ntsrotate ntsservercert ntsserverkey ntstrustedcerts " +
		"opencommands peer pidfile pool port ptpdomain ptpport ratelimit refclock refresh " +
		"reselectdist rtcautotrim rtcdevice rtcfile rtconutc rtcsync server smoothtime sourcedir " +
		"stratumweight tempcomp user lock_all sched_priority commandkey generatecommandkey " +
		"linux_freq_scale linux_hz bindcmddevice ntsaeads"
	ntpd := "automax broadcast broadcastclient broadcastdelay calldelay disable driftfile enable " +
		"filegen fudge includefile leapfile logconfig logfile manycastclient manycastserver " +
		"multicastclient peer phone pidfile pool discard restrict server setvar statistics " +
		"statsdir tick tinker tos trap unconfig unpeer controlkey crypto keys keysdir " +
		"ntpsigndsocket requestkey revoke trustedkey interface nic saveconfigdir mru rlimit " +
		"leapsmearinterval nts"
	for _, d := range strings.Fields(chrony + " " + ntpd) {
		_, err := Parse("t.conf", []byte(d+" x\n"))
		if err != nil && strings.Contains(err.Error(), "unknown directive") {
			t.Errorf("%s: %v", d, err)
		}
		if why, ok := noEffect(d); ok {
			c, _ := Parse("t.conf", []byte(d+" x\n"))
			if len(c.Warnings) != 1 || c.Warnings[0].String() != "t.conf:1: "+d+": "+why {
				t.Errorf("%s: warnings %v", d, c.Warnings)
			}
		}
	}
	parseErr(t, "frobnicate 1\n", "t.conf:1: frobnicate: unknown directive")
}

func TestRestrictSourceAndHostnames(t *testing.T) {
	c := mustParse(t, "restrict source nomodify notrap noquery\nrestrict ntp.example.net nomodify notrap noquery\n")
	if len(c.Restrict) != 0 || len(c.Warnings) != 2 {
		t.Errorf("restrict source/host: %d rules, warnings %s", len(c.Restrict), warningsText(c))
	}
	parseErr(t, "restrict bad.example.net ignore\n", "t.conf:1: restrict: bad.example.net: host names are not resolved here and this rule restricts")
	parseErr(t, "restrict 10.0.0.0 mask 255.0.0.0 frobnicate\n", "frobnicate")
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// include, confdir and sourcedir read files as chrony does: sorted, a
// confdir name in an earlier directory hiding the same name later, only
// source lines in *.sources; errors and warnings name the included file.
func TestIncludes(t *testing.T) {
	dir := t.TempDir()
	d1, d2, src := filepath.Join(dir, "d1"), filepath.Join(dir, "d2"), filepath.Join(dir, "src")
	writeFile(t, filepath.Join(d1, "b.conf"), "server b1\n")
	writeFile(t, filepath.Join(d2, "b.conf"), "server hidden\n")
	writeFile(t, filepath.Join(d2, "a.conf"), "server a2\n")
	writeFile(t, filepath.Join(d2, "c.txt"), "frobnicate\n")
	writeFile(t, filepath.Join(src, "x.sources"), "server s1 iburst\npool p1\n")
	writeFile(t, filepath.Join(dir, "inc", "2.conf"), "server i2\n")
	writeFile(t, filepath.Join(dir, "inc", "1.conf"), "server i1\nrtcsync\n")
	text := "confdir " + d1 + " " + d2 + "\nsourcedir " + src + " " + filepath.Join(dir, "missing") + "\n" +
		"include " + filepath.Join(dir, "inc", "*.conf") + "\n"
	c := mustParse(t, text)
	var hosts []string
	for _, s := range c.Sources {
		hosts = append(hosts, s.Host)
	}
	if want := []string{"a2", "b1", "s1", "p1", "i1", "i2"}; !slices.Equal(hosts, want) {
		t.Errorf("sources %q, want %q", hosts, want)
	}
	if w := warningsText(c); !strings.Contains(w, filepath.Join(dir, "inc", "1.conf")+":2: rtcsync:") {
		t.Errorf("warning does not name the included file:\n%s", w)
	}
	writeFile(t, filepath.Join(src, "y.sources"), "port 1\n")
	parseErr(t, "sourcedir "+src+"\n", filepath.Join(src, "y.sources")+":1: port: only server")
	self := filepath.Join(dir, "self.conf")
	writeFile(t, self, "include "+self+"\n")
	parseErr(t, "include "+self+"\n", "nested more than")
	writeFile(t, filepath.Join(dir, "main.conf"), "includefile snippet\nincludefile absent\n")
	writeFile(t, filepath.Join(dir, "snippet"), "server near\n")
	c, err := Load(filepath.Join(dir, "main.conf"))
	if err != nil || len(c.Sources) != 1 || c.Sources[0].Host != "near" || len(c.Warnings) != 1 {
		t.Errorf("includefile relative to the including file: %v %+v %s", err, c.Sources, warningsText(c))
	}
}

func TestMaxNTSConnections(t *testing.T) {
	if c := mustParse(t, "maxntsconnections 100\n"); c.MaxNTSConnections != 100 {
		t.Errorf("got %d", c.MaxNTSConnections)
	}
	parseErr(t, "maxntsconnections 0\n", "maxntsconnections")
}

// ntsprocesses is chrony's: 1 helper by default, 0 for none, and no
// longer a directive without effect.
func TestNTSProcesses(t *testing.T) {
	if c := mustParse(t, "\n"); c.NTSProcesses != 1 {
		t.Errorf("default %d, want 1 (chrony's)", c.NTSProcesses)
	}
	for _, n := range []int{0, 4} {
		c := mustParse(t, fmt.Sprintf("ntsprocesses %d\n", n))
		if c.NTSProcesses != n || len(c.Warnings) != 0 {
			t.Errorf("ntsprocesses %d: got %d, warnings %s", n, c.NTSProcesses, warningsText(c))
		}
	}
	parseErr(t, "ntsprocesses 65\n", "t.conf:1: ntsprocesses")
	parseErr(t, "ntsprocesses -1\n", "ntsprocesses")
	parseErr(t, "ntsprocesses 1\nntsprocesses 2\n", "ntsprocesses")
}

// ntskenice: idle by default (helpers in SCHED_IDLE), or a nice value;
// idle named explicitly with NTS-KE in the daemon's own process is refused,
// naming the line.
func TestNTSKENice(t *testing.T) {
	if c := mustParse(t, "\n"); !c.NTSKEIdle || c.NTSKENice != 0 {
		t.Errorf("default idle %v nice %d, want idle", c.NTSKEIdle, c.NTSKENice)
	}
	if c := mustParse(t, "ntskenice 10\n"); c.NTSKEIdle || c.NTSKENice != 10 {
		t.Errorf("ntskenice 10: idle %v nice %d", c.NTSKEIdle, c.NTSKENice)
	}
	if c := mustParse(t, "ntskenice 0\n"); c.NTSKEIdle || c.NTSKENice != 0 {
		t.Errorf("ntskenice 0 (as chronyd): idle %v nice %d", c.NTSKEIdle, c.NTSKENice)
	}
	if c := mustParse(t, "ntsprocesses 0\n"); c.NTSProcesses != 0 {
		t.Errorf("ntsprocesses 0 with the default idle: %d", c.NTSProcesses)
	}
	parseErr(t, "ntsprocesses 0\nntskenice idle\n", "t.conf:2: ntskenice idle needs ntsprocesses")
	parseErr(t, "ntskenice lowest\n", "t.conf:1: ntskenice: must be idle or a nice value")
}

func TestNTSAEADs(t *testing.T) {
	if c := mustParse(t, "ntsaeads 15 30\n"); !slices.Equal(c.NTSAEADs, []uint16{15, 30}) {
		t.Errorf("ntsaeads %v", c.NTSAEADs)
	}
	if c := mustParse(t, "port 1\n"); c.NTSAEADs != nil {
		t.Errorf("default %v, want nil", c.NTSAEADs)
	}
	parseErr(t, "ntsaeads 17\n", "AEAD 17 is not supported")
	parseErr(t, "ntsaeads 15 15\n", "twice")
	parseErr(t, "ntsaeads\n", "one or two")
}

func TestNTPsecNTS(t *testing.T) {
	c := mustParse(t, "nts enable\nnts key /k.pem\nnts cert /c.pem\nnts ca /ca.pem\nnts mintls TLS1.3\n")
	if c.NTSServerKey != "/k.pem" || c.NTSServerCert != "/c.pem" || !slices.Equal(c.NTSTrustedCerts, []string{"/ca.pem"}) || len(c.Warnings) != 1 {
		t.Errorf("%+v %s", c, warningsText(c))
	}
	if c := mustParse(t, "nts disable\n"); c.NTSPort != 0 {
		t.Errorf("nts disable: ntsport %d", c.NTSPort)
	}
	parseErr(t, "nts frob\n", "unknown or malformed")
}

// driftfile is implemented: the path is kept and nothing warns.
func TestDriftFileDirective(t *testing.T) {
	c, err := Parse("t.conf", []byte("driftfile /var/lib/chrony/chrony.drift\n"))
	if err != nil || c.DriftFile != "/var/lib/chrony/chrony.drift" || len(c.Warnings) != 0 {
		t.Fatalf("%v %q %v", err, c.DriftFile, c.Warnings)
	}
	parseErr(t, "driftfile\n", "driftfile")
}

// dumpdir is implemented; dumponexit still warns (it is implied).
func TestDumpDirDirective(t *testing.T) {
	c, err := Parse("t.conf", []byte("dumpdir /var/lib/timegate/dump\n"))
	if err != nil || c.DumpDir != "/var/lib/timegate/dump" || len(c.Warnings) != 0 {
		t.Fatalf("%v %q %v", err, c.DumpDir, c.Warnings)
	}
}

func TestLogDirectives(t *testing.T) {
	c, err := Parse("t.conf", []byte("logdir /var/log/timegate\nlog measurements statistics\nlog tracking selection\n"))
	if err != nil || c.LogDir != "/var/log/timegate" || c.Log != (LogFiles{true, true, true}) {
		t.Fatalf("%v %q %+v", err, c.LogDir, c.Log)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].String(), "t.conf:3: log: selection: not written") {
		t.Errorf("warnings %v", c.Warnings)
	}
	parseErr(t, "log\n", "at least one")
	parseErr(t, "log trackin\n", `unknown log "trackin"`)
}

func TestMakeStep(t *testing.T) {
	for _, tc := range []struct {
		line string
		want MakeStep
		warn bool
	}{
		{"makestep 1 3", MakeStep{time.Second, 3}, false},
		{"makestep 0.1 0", MakeStep{100 * time.Millisecond, -1}, false},
		{"makestep 1.0 -1", MakeStep{time.Second, 1}, true},
	} {
		c, err := Parse("t.conf", []byte(tc.line+"\n"))
		if err != nil || c.MakeStep != tc.want || (len(c.Warnings) == 1) != tc.warn {
			t.Errorf("%s: %v %+v %v", tc.line, err, c.MakeStep, c.Warnings)
		}
	}
	parseErr(t, "makestep 0 3\n", "threshold must be")
	parseErr(t, "makestep 1 x\n", "limit must be")
	parseErr(t, "makestep 1\n", "takes 2")
}

func TestTrustRequire(t *testing.T) {
	c, err := Parse("t.conf", []byte("server a.example nts trust require\nserver b.example xleave\n"))
	if err != nil || len(c.Sources) != 2 || !c.Sources[0].Trust || !c.Sources[0].Require || c.Sources[1].Trust || !c.Sources[1].XLeave {
		t.Fatalf("%v %+v", err, c.Sources)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %v", c.Warnings)
	}
}
