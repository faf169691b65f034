//go:build unix

package secfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO is refused at once instead of blocking open(2) until a writer comes.
func TestReadPrivateFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := ReadPrivate(path)
		res <- err
	}()
	select {
	case err := <-res:
		if !errors.Is(err, ErrNotRegular) {
			t.Fatalf("err = %v, want ErrNotRegular", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadPrivate blocked on a FIFO")
	}
}

func TestReadPrivateDevice(t *testing.T) {
	if _, err := ReadPrivate("/dev/zero"); !errors.Is(err, ErrNotRegular) && !errors.Is(err, ErrInsecureMode) {
		t.Fatalf("/dev/zero: err = %v, want refusal", err)
	}
}

// WriteAtomic applies perm exactly whatever the umask. Not parallel: the
// umask is process-wide.
func TestWriteAtomicIgnoresUmask(t *testing.T) {
	for _, tc := range []struct {
		umask int
		perm  os.FileMode
	}{
		{0o077, 0o644}, // a umask must not make a public cert unreadable
		{0o022, 0o666},
		{0o000, 0o600}, // nor make a key readable
		{0o777, 0o400},
	} {
		old := syscall.Umask(tc.umask)
		path := filepath.Join(t.TempDir(), "f")
		err := WriteAtomic(path, []byte("x"), tc.perm)
		syscall.Umask(old)
		if err != nil {
			t.Fatalf("umask %04o perm %v: %v", tc.umask, tc.perm, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.perm {
			t.Errorf("umask %04o: mode %v, want %v", tc.umask, fi.Mode().Perm(), tc.perm)
		}
	}
}

// A private mode is not enough when another user owns the file: that user
// could chmod it open at any time. Root-owned files and our own pass.
func TestReadPrivateOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("1 AES128 HEX:00"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivate(path); err != nil {
		t.Fatalf("root-owned 0600 file: %v", err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivate(path); !errors.Is(err, ErrInsecureOwner) {
		t.Fatalf("file owned by uid 65534: err = %v, want ErrInsecureOwner", err)
	}
}
