//go:build unix

package secfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Campaign finding: an NTS key ring planted in a world-writable ntsdumpdir
// by another user was loaded. A directory others may write (without the
// sticky bit), anywhere on the way to a secret or to its symlink target,
// makes ReadPrivate refuse the secret.
func TestReadPrivateRefusesWorldWritableDir(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	sticky := filepath.Join(base, "sticky")
	safe := filepath.Join(base, "safe")
	for dir, mode := range map[string]os.FileMode{open: 0o777, sticky: 0o777 | os.ModeSticky, safe: 0o700} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{open, sticky, safe} {
		if err := os.WriteFile(filepath.Join(dir, "ring"), []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(open, "ring"), filepath.Join(safe, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(open, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(open, "sub", "ring"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path string
		ok   bool
	}{
		{filepath.Join(open, "ring"), false},
		{filepath.Join(open, "sub", "ring"), false}, // a parent is open: sub could be renamed away
		{filepath.Join(safe, "link"), false},        // the target's directory is open
		{filepath.Join(sticky, "ring"), true},
		{filepath.Join(safe, "ring"), true},
	}
	for _, c := range cases {
		_, err := ReadPrivate(c.path)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.path, err)
		}
		if !c.ok && !errors.Is(err, ErrInsecureDir) {
			t.Errorf("%s: err = %v, want ErrInsecureDir", c.path, err)
		}
	}
}

// Campaign finding: the planted key ring was mode 0600 but owned by user
// nobody. A secret owned by another user than root, the effective user or
// a trusted owner is refused.
func TestReadPrivateRefusesOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	path := filepath.Join(t.TempDir(), "ring")
	if err := os.WriteFile(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivate(path); err != nil {
		t.Fatalf("root's own file: %v", err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivate(path); !errors.Is(err, ErrInsecureOwner) {
		t.Fatalf("file of uid 65534: err = %v, want ErrInsecureOwner", err)
	}
	if _, err := ReadPrivateOwned(path, 65534); err != nil {
		t.Fatalf("file of a trusted owner: %v", err)
	}
}
