//go:build linux

package kelisten

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"timegate/nts"
)

// threadNice is the nice value of the calling thread (the raw system call
// returns 20 - nice).
func threadNice(t *testing.T) int {
	t.Helper()
	p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - p
}

func TestLowerPriorityNicesOnlyItsThread(t *testing.T) {
	before := make(chan int, 1)
	got := make(chan int, 1)
	go func() {
		before <- threadNice(t)
		if !lowerPriority(7) {
			t.Error("setpriority failed")
		}
		got <- threadNice(t)
	}()
	b, n := <-before, <-got
	if n != max(b, 7) {
		t.Fatalf("thread nice %d after lowerPriority(7), %d before", n, b)
	}
	if mine := threadNice(t); mine == 7 && b != 7 {
		t.Fatalf("the test's own thread was niced too")
	}
}

// With Nice set, sessions run on the pool's niced threads: a full NTS-KE
// works, a second one reuses the idle thread, and stopping the listener
// ends the threads (the fixture's cleanup waits for Serve, which waits for
// them).
func TestNiceSessionsServeFullKE(t *testing.T) {
	f := start(t, "127.0.0.1:0", func(c *Config) { c.Nice = 10 })
	for i := range 3 {
		res, err := f.exchange(t, "127.0.0.1", 5*time.Second)
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if len(res.Cookies) != nts.MaxCookies {
			t.Fatalf("session %d: %d cookies", i, len(res.Cookies))
		}
		waitFor(t, func() bool { return f.l.Stats().Served == uint64(i+1) && f.l.Stats().Active == 0 })
	}
}
