package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RsyslogOptions choose the collector's input.
type RsyslogOptions struct {
	// Transport is "relp" (imrelp, acknowledged), "relp+tls" (imrelp over
	// TLS) or "tls" (imtcp with the gtls driver, RFC 5425 octet counting).
	Transport string
	// For "tls": the server's certificate chain and key, and the CA that
	// client certificates must chain to (ClientCA empty: clients are not
	// asked for a certificate).
	CertPath, KeyPath, ClientCA string
}

// Rsyslog is a running rsyslogd that collects what timegate ships.
type Rsyslog struct {
	*Process
	Port    int
	OutPath string // one line per message from app-name timegate: its MSG
}

// StartRsyslog starts `rsyslogd -n -f CONF -i PIDFILE` with its own work
// directory and configuration under /tmp (never the system instance),
// listening on a free loopback TCP port, and returns once it listens. The
// cleanup stops it. Under CI=true a missing rsyslogd (or its relp/gnutls
// modules) fails the test.
func StartRsyslog(t testing.TB, o RsyslogOptions) *Rsyslog {
	t.Helper()
	bin := RequireBinary(t, "rsyslogd")
	module := map[string]string{"relp": "imrelp.so", "relp+tls": "imrelp.so", "tls": "lmnsd_gtls.so"}[o.Transport]
	if module == "" {
		t.Fatalf("StartRsyslog: transport %q", o.Transport)
	}
	if !rsyslogModule(module) {
		missing(t, "rsyslog module %s not found (Debian: apt-get install -y rsyslog-relp rsyslog-gnutls)", module)
	}
	p := newProcess(t, "rsyslogd", "rsyslog")
	r := &Rsyslog{Process: p, Port: FreeTCPPort(t), OutPath: filepath.Join(p.Dir, "collected.log")}
	work := filepath.Join(p.Dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	p.ConfPath = filepath.Join(p.Dir, "rsyslog.conf")
	if err := os.WriteFile(p.ConfPath, []byte(r.config(o, work)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.path = bin
	p.args = []string{"-n", "-f", p.ConfPath, "-i", filepath.Join(p.Dir, "rsyslogd.pid")}
	p.ready = func() (bool, string, error) {
		ok, status := portsStatus(p.Pid(), nil, []int{r.Port})
		return ok, status, nil
	}
	if err := p.start(readyTimeout); err != nil {
		t.Fatalf("%v", err)
	}
	return r
}

// rsyslogModule reports whether rsyslog's plug-in is installed.
func rsyslogModule(name string) bool {
	for _, dir := range []string{"/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog", "/usr/lib/rsyslog", "/usr/lib64/rsyslog"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// config keeps only timegate's messages, and writes each MSG (the audit
// record's JSON line) on its own line; rsyslog's own notices stay out.
// Message size limits stay at rsyslog's defaults (8 KiB), which timegate's
// records are built to fit.
func (r *Rsyslog) config(o RsyslogOptions, work string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global(workDirectory=%q", work)
	if o.Transport == "tls" {
		fmt.Fprintf(&b, " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q", o.CertPath, o.KeyPath)
		if o.ClientCA != "" {
			fmt.Fprintf(&b, " defaultNetstreamDriverCAFile=%q", o.ClientCA)
		}
	}
	b.WriteString(")\n")
	switch o.Transport {
	case "relp":
		fmt.Fprintf(&b, "module(load=\"imrelp\")\ninput(type=\"imrelp\" address=\"127.0.0.1\" port=\"%d\")\n", r.Port)
	case "relp+tls":
		fmt.Fprintf(&b, "module(load=\"imrelp\")\ninput(type=\"imrelp\" address=\"127.0.0.1\" port=\"%d\" tls=\"on\" tls.myCert=%q tls.myPrivKey=%q", r.Port, o.CertPath, o.KeyPath)
		if o.ClientCA != "" {
			fmt.Fprintf(&b, " tls.caCert=%q tls.authMode=\"certvalid\"", o.ClientCA)
		}
		b.WriteString(")\n")
	case "tls":
		auth := "anon"
		if o.ClientCA != "" {
			auth = "x509/certvalid"
		}
		fmt.Fprintf(&b, "module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=%q)\n", auth)
		fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\")\n", r.Port)
	}
	b.WriteString("template(name=\"msgonly\" type=\"string\" string=\"%msg%\\n\")\n")
	fmt.Fprintf(&b, "if $app-name == \"timegate\" then {\n  action(type=\"omfile\" file=%q template=\"msgonly\")\n  stop\n}\n", r.OutPath)
	return b.String()
}

// Lines returns the collected messages so far.
func (r *Rsyslog) Lines() []string {
	b, err := os.ReadFile(r.OutPath)
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// Start runs the collector again after Stop, on the same port and files.
func (r *Rsyslog) Start(t testing.TB) {
	t.Helper()
	if err := r.Stop(); err != nil {
		t.Fatalf("%v", err)
	}
	if err := r.start(readyTimeout); err != nil {
		t.Fatalf("%v", err)
	}
}
