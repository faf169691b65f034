package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfigFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(good, []byte("port 11123\nlocal stratum 3\nrestrict default kod limited\n"), 0o644)
	os.WriteFile(bad, []byte("port 11123\nrestrict default frob\nlocal stratum 99\n"), 0o644)
	var stderr bytes.Buffer
	if code := run([]string{"-check-config", good}, &stderr); code != 0 {
		t.Fatalf("good config: exit %d: %s", code, stderr.String())
	}
	stderr.Reset()
	code := run([]string{"-check-config", bad}, &stderr)
	out := stderr.String()
	if code != 1 || !strings.Contains(out, "bad.conf:2: restrict") || !strings.Contains(out, "bad.conf:3: local") {
		t.Fatalf("bad config: exit %d: %s", code, out)
	}
}

func TestBadFlagIsUsageError(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-no-such-flag"}, &stderr); code != 2 {
		t.Fatalf("exit %d", code)
	}
}

func TestUnreadableConfigFails(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-config", filepath.Join(t.TempDir(), "missing.conf")}, &stderr); code != 1 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

// -h prints the usage and succeeds; -version prints module, revision and Go
// version and succeeds.
func TestHelpAndVersion(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var stderr bytes.Buffer
		if code := run([]string{arg}, &stderr); code != 0 || !strings.Contains(stderr.String(), "-check-config") {
			t.Errorf("%s: exit %d: %s", arg, code, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"-version"}, &stderr); code != 0 {
		t.Errorf("-version: exit %d", code)
	}
	if v := versionString(); !strings.HasPrefix(v, "timegate ") || !strings.Contains(v, "go1.") {
		t.Errorf("version %q", v)
	}
}
