// Package capture records the golden packets that the unit tests of ntp, nts
// and symkey replay without chrony installed (DESIGN.md, Tests: "Golden
// captures of real chrony packets and KE exchanges in testdata/").
//
// Its only code is a test behind the build tag "capture", so `go test ./...`
// never runs it. To capture again (needs root and chrony 4.3:
// apt-get install -y chrony, with service start-up suppressed):
//
//	export GOTOOLCHAIN=go1.27.3
//	go test -tags capture -count=1 -v ./tests/capture/
//
// It overwrites the capture files in ntp/testdata, nts/testdata and
// symkey/testdata; `-args -out DIR` writes the same tree under DIR instead.
//
// How: one process on loopback plays the server for three real chronyd
// clients, one after another (plain, `key 1` AES128, `nts`). Its UDP server
// answers every request with timegate's own ntp.Responder, with the
// symmetric key of a keys file it writes and an nts.Server over a key ring it
// makes; every datagram in and out is recorded. Its NTS-KE server is a Go TLS
// listener (nts.ServerTLSConfig, a fresh self-signed certificate) that reads
// chrony's request up to End of Message, keeps those plaintext bytes, and
// answers with nts.Negotiate, whose Port Negotiation record sends chrony to
// the recording UDP port. So the daemon is not needed: every byte chrony
// received was made by the same pure code the gateway runs, and every request
// recorded is one that chrony sent on its own. The NTS client's second request
// is deliberately left unanswered, so that its third carries a Cookie
// Placeholder (chrony asks for the cookie it lost).
//
// chronyd runs through tests/harness: -x (never touches the clock), without
// CAP_SYS_TIME, and only on 127.0.0.1.
package capture
