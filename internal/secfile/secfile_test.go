package secfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func writeMode(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod after writing: WriteFile's mode is filtered by the umask.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestReadPrivateModes(t *testing.T) {
	secret := []byte("-----BEGIN PRIVATE KEY-----\n")
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o700, true},
		{0o200, true}, // unreadable only when not root; mode is still private
		{0o640, true}, // group may read (Debian's chrony.keys is 0640 root:_chrony)
		{0o440, true},
		{0o660, false},
		{0o604, false},
		{0o620, false},
		{0o602, false},
		{0o610, true}, // execute for the group grants nothing on a regular file
		{0o601, false},
		{0o644, false},
		{0o666, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			if tc.mode&0o400 == 0 && os.Geteuid() != 0 {
				t.Skip("owner cannot read a write-only file unless root")
			}
			path := filepath.Join(t.TempDir(), "key.pem")
			writeMode(t, path, secret, tc.mode)
			got, err := ReadPrivate(path)
			if tc.ok {
				if err != nil {
					t.Fatalf("ReadPrivate: %v", err)
				}
				if !bytes.Equal(got, secret) {
					t.Fatalf("got %q, want %q", got, secret)
				}
				return
			}
			if !errors.Is(err, ErrInsecureMode) {
				t.Fatalf("err = %v, want ErrInsecureMode", err)
			}
			if got != nil {
				t.Fatalf("refused file still returned %d bytes", len(got))
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, "0"+octal(tc.mode)) {
				t.Fatalf("error %q should name %s and mode 0%s", msg, path, octal(tc.mode))
			}
		})
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

func TestReadPrivateNotRegular(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := ReadPrivate(dir)
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("directory: err = %v, want ErrNotRegular naming %s", err, dir)
	}
}

func TestReadPrivateMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.key")
	_, err := ReadPrivate(path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want ErrNotExist naming the file", err)
	}
}

// Symlinks are followed (certbot and Kubernetes use them), but the mode
// checked is the target's, so a link cannot hide a world-readable key.
func TestReadPrivateSymlink(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "private.key")
	public := filepath.Join(dir, "public.key")
	writeMode(t, private, []byte("p"), 0o600)
	writeMode(t, public, []byte("q"), 0o644)
	toPrivate := filepath.Join(dir, "link-private")
	toPublic := filepath.Join(dir, "link-public")
	if err := os.Symlink(private, toPrivate); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(public, toPublic); err != nil {
		t.Fatal(err)
	}
	// The link itself is mode 0777 on Linux; that must not matter.
	if got, err := ReadPrivate(toPrivate); err != nil || string(got) != "p" {
		t.Fatalf("link to private file: %q, %v", got, err)
	}
	if _, err := ReadPrivate(toPublic); !errors.Is(err, ErrInsecureMode) {
		t.Fatalf("link to public file: err = %v, want ErrInsecureMode", err)
	}
}

func TestReadPrivateSizeCap(t *testing.T) {
	dir := t.TempDir()
	exact := filepath.Join(dir, "exact")
	writeMode(t, exact, make([]byte, MaxSize), 0o600)
	if got, err := ReadPrivate(exact); err != nil || len(got) != MaxSize {
		t.Fatalf("file of exactly MaxSize: len %d, err %v", len(got), err)
	}
	big := filepath.Join(dir, "big")
	writeMode(t, big, make([]byte, MaxSize+1), 0o600)
	if _, err := ReadPrivate(big); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), big) {
		t.Fatalf("oversized file: err = %v, want ErrTooLarge naming it", err)
	}
}

func TestWriteAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ring.key")
	for i, content := range []string{"first version", "second, longer version", "3"} {
		if err := WriteAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, err := ReadPrivate(path)
		if err != nil || string(got) != content {
			t.Fatalf("write %d: read back %q, %v", i, got, err)
		}
		assertOnlyEntries(t, dir, "ring.key")
	}
}

func assertOnlyEntries(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("directory holds %v, want %v (temporary file left behind?)", names, want)
	}
}

func TestWriteAtomicFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// Renaming a file over a non-empty directory fails after the temporary
	// file was written: it must be cleaned up.
	target := filepath.Join(dir, "occupied")
	if err := os.MkdirAll(filepath.Join(target, "child"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(target, []byte("x"), 0o600); err == nil {
		t.Fatal("WriteAtomic over a directory succeeded")
	}
	assertOnlyEntries(t, dir, "occupied")

	if err := WriteAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing directory: err = %v, want ErrNotExist", err)
	}
	if err := WriteAtomic(filepath.Join(dir, "f"), []byte("x"), os.ModeSetuid|0o600); err == nil {
		t.Fatal("setuid bit accepted")
	}
	assertOnlyEntries(t, dir, "occupied")
}

// A symlink at path is replaced by a regular file; its old target is kept.
func TestWriteAtomicSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link")
	writeMode(t, target, []byte("old"), 0o600)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(link, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(link)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("link after write: %v, %v; want regular file", fi, err)
	}
	if got, _ := os.ReadFile(target); string(got) != "old" {
		t.Fatalf("symlink target changed to %q", got)
	}
}

// Readers racing an atomic writer see one complete version or the other.
func TestWriteAtomicConcurrentReaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	versions := [][]byte{bytes.Repeat([]byte("a"), 3000), bytes.Repeat([]byte("b"), 70000)}
	if err := WriteAtomic(path, versions[0], 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := ReadPrivate(path)
			if err != nil {
				t.Errorf("read during replace: %v", err)
				return
			}
			if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
				t.Errorf("reader saw a torn file of %d bytes", len(got))
				return
			}
		}
	})
	for i := range 200 {
		if err := WriteAtomic(path, versions[i%2], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
}
