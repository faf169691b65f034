package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// InCI reports whether the tests run in continuous integration (CI=true), where a
// missing peer is a failure rather than a reason to skip.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// sbinDirs are searched after PATH: daemons live there and a non-login root
// shell does not always have them in PATH.
var sbinDirs = [...]string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// debianPackage names the package that provides a peer, for the failure message.
func debianPackage(name string) string {
	switch name {
	case "chronyd", "chronyc":
		return "chrony"
	case "faketime":
		return "faketime"
	case "ntpd", "ntpdig", "ntpq":
		return "ntpsec (ntpdig: ntpsec-ntpdig)"
	case "rsyslogd":
		return "rsyslog"
	case "etcd":
		return "etcd-server"
	case "setpriv":
		return "util-linux"
	case "systemd-analyze":
		return "systemd"
	case "ip":
		return "iproute2"
	case "unshare", "nsenter":
		return "util-linux"
	}
	return name
}

// LookBinary finds an executable in PATH, then in the sbin directories.
func LookBinary(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range sbinDirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// RequireBinary returns the path of the executable name. When it is missing the
// test fails under CI=true and is skipped otherwise.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	if p, ok := LookBinary(name); ok {
		return p
	}
	missing(t, "%s not found in PATH or %v (Debian: apt-get install -y %s)", name, sbinDirs, debianPackage(name))
	return ""
}

// RequireRoot stops a test that needs root (chronyd 4.3 refuses to start
// otherwise): it fails under CI=true and is skipped elsewhere.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root: %s", why)
	}
}

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true: "+format, args...)
	}
	t.Skipf(format+" (skipped; under CI=true this fails)", args...)
}
