package pidfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestWriteAndRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "timegate.pid")
	remove, err := Write(path, 4242, "timegate")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if err != nil || string(b) != "4242\n" || fi.Mode().Perm() != 0o644 {
		t.Fatalf("file %q mode %v, %v", b, fi.Mode(), err)
	}
	remove()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("not removed: %v", err)
	}
}

// A file naming a live instance of the same program blocks the start; a
// stale one (dead PID, or a PID reused by another program) does not.
func TestRunningInstance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	self := os.Getpid()
	b, _ := os.ReadFile("/proc/self/comm")
	comm := string(b[:len(b)-1])
	os.WriteFile(path, []byte(strconv.Itoa(self)+"\n"), 0o644)
	if _, err := Write(path, self+1, comm); !errors.Is(err, ErrRunning) {
		t.Fatalf("live instance: %v", err)
	}
	if _, err := Write(path, self+1, "not-"+comm); err != nil {
		t.Fatalf("PID of another program: %v", err)
	}
	os.WriteFile(path, []byte("999999999\n"), 0o644)
	if _, err := Write(path, self+1, comm); err != nil {
		t.Fatalf("dead PID: %v", err)
	}
}

// remove leaves a file that another instance has rewritten since.
func TestRemoveOnlyOwn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	remove, err := Write(path, 1111, "timegate")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("2222\n"), 0o644)
	remove()
	if b, _ := os.ReadFile(path); string(b) != "2222\n" {
		t.Fatalf("file %q", b)
	}
}
