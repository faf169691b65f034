package privdrop

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCheck judges by owner, group and mode bits as the target would meet them,
// whoever runs the check, and names every problem with its fix.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	// Parents of t.TempDir may be private: Check walks them too, so give the
	// target an identity that owns nothing and test through a directory of
	// known modes below the temp dir only where that is what is asserted.
	me := os.Getuid()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, nil, mode)
		os.Chmod(p, mode)
		return p
	}
	private := write("private", 0o600)
	shared := write("shared", 0o644)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	os.Chmod(sub, 0o755)

	stranger := Target{Name: "stranger", UID: 54321, GID: 54321, Groups: []int{54321}}
	owner := Target{Name: "owner", UID: me, GID: 54321, Groups: []int{54321}}
	if err := Check(owner, Needs{Read: []string{private, shared}, Write: []string{sub}}); err != nil {
		t.Errorf("the owner: %v", err)
	}
	err := Check(stranger, Needs{Read: []string{private, shared}, Write: []string{sub}})
	if err == nil {
		t.Fatal("a stranger may read a private file and write a 0755 directory?")
	}
	msg := err.Error()
	if canReach(dir) && (!strings.Contains(msg, private+" must stay readable") || strings.Contains(msg, shared+" must") ||
		!strings.Contains(msg, "directory "+sub+" must stay writable") || !strings.Contains(msg, "chown stranger "+private)) {
		t.Errorf("problems:\n%s", msg)
	}
	if err := Check(stranger, Needs{Read: []string{filepath.Join(dir, "missing")}}); err == nil {
		t.Error("a missing file passed")
	}
}

// canReach: the temp dir's parents let others search them (not so under
// some TMPDIRs, where every path fails first on the parent).
func canReach(dir string) bool {
	for d := filepath.Dir(dir); d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
	}
	return true
}

// TestAdopt hands root-owned paths to the target and leaves others' alone.
func TestAdopt(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ring"), nil, 0o600)
	theirs := filepath.Join(dir, "theirs")
	os.WriteFile(theirs, nil, 0o600)
	os.Chown(theirs, 1234, 1234)
	tg := Target{Name: "nobody", UID: 65534, GID: 65534}
	if err := Adopt(tg, dir, filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"": 65534, "ring": 65534, "theirs": 1234} {
		fi, _ := os.Stat(filepath.Join(dir, name))
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != want {
			t.Errorf("%q owned by %d, want %d", name, uid, want)
		}
	}
}

func TestLookupRefusesRoot(t *testing.T) {
	if _, err := Lookup("root"); err == nil {
		t.Fatal("dropping to root accepted")
	}
	if _, err := Lookup("no-such-user-here"); err == nil {
		t.Fatal("unknown user accepted")
	}
}
