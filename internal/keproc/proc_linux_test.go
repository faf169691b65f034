package keproc

import "testing"

func TestHelperEnv(t *testing.T) {
	got := helperEnv([]string{"PATH=/bin", "NOTIFY_SOCKET=/run/x", "LISTEN_FDS=1", "WATCHDOG_USEC=5", "GODEBUG=x=1", childEnv + "=0"})
	if len(got) != 2 || got[0] != "PATH=/bin" || got[1] != "GODEBUG=x=1" {
		t.Fatalf("helper environment %q", got)
	}
}
