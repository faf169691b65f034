package tests

import (
	"fmt"
	"testing"
	"time"
)

// Issue 13 item 6: AEAD 30 (AES-128-GCM-SIV) between two timegates, the Go
// client being timegate's own upstream engine (chrony 4.3 has no AEAD 30):
// the client offers 30 and 15, the server prefers 30, and the client
// synchronises over NTS with it. With `ntsaeads 15` on the server the same
// client gets AEAD 15: the preference is the server's.
func TestTimegateNTSAEAD30(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server []string
		aead   int
	}{
		{"default prefers 30", nil, 30},
		{"ntsaeads 15", []string{"ntsaeads 15"}, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ntpPort, kePort, cert := ntsTimegate(t, 5, tc.server...)
			line := fmt.Sprintf("server 127.0.0.1 port %d nts ntsport %d iburst minpoll -4 maxpoll -4", ntpPort, kePort)
			tg, port := upstreamTimegate(t, "ntstrustedcerts "+cert, "minsources 1", line)
			tg.WaitLog(t, 0, fmt.Sprintf(`NTS-KE done.*"aead": %d,`, tc.aead), 20*time.Second)
			checkHonest(t, waitServing(t, tg, port, 6))
		})
	}
}
