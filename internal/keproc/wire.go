// Package keproc runs the NTS-KE front end in helper processes, as chronyd
// does (`ntsprocesses`): the TLS handshakes' public-key work then competes
// with the NTP workers under the kernel's scheduler, which preempts it when
// a request arrives, instead of under the Go scheduler, where a woken NTP
// worker waits in the run queue behind every CPU-bound handshake step of
// the same process (BENCHMARKS.md, "NTP beside NTS-KE"). A helper parses
// hostile TLS; the parent hands it only what NTS-KE needs (the listening
// sockets, the certificate, the cookie key ring) and trusts nothing it
// sends back beyond fixed-size records and bounded JSON.
//
// Parent and helper talk over an AF_UNIX SOCK_SEQPACKET socket pair: the
// kernel keeps message boundaries, so a message is one type octet and its
// payload, and no framing can be misread.
package keproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"timegate/internal/kelisten"
)

// Message types, the first octet of every message.
const (
	msgConfig   byte = 'C' // parent → helper, first: JSON ChildConfig
	msgCert     byte = 'X' // parent → helper: certificate chain and key (encodeCert)
	msgRing     byte = 'R' // parent → helper: nts.KeyRing.MarshalBinary; empty: no ring yet
	msgStatsReq byte = 'S' // parent → helper: no payload
	msgRate     byte = 'L' // parent → helper: JSON *ratelimit.Config (null: off), a reloaded ntsratelimit
	msgAck      byte = 'A' // helper → parent, after C, X, R, L: empty, or why it was refused
	msgStats    byte = 'T' // helper → parent, after S: JSON Stats
	msgFailures byte = 'F' // helper → parent, unasked: failure records
)

// maxMessage bounds every message both ways, below the default socket
// send buffer (a larger SOCK_SEQPACKET message is refused with EMSGSIZE).
// The largest is a certificate chain with its key: a few KiB in practice;
// one over the bound is refused with an error naming its size. A receive
// buffer of maxMessage+1 octets tells a message the kernel truncated from
// one that fits.
const maxMessage = 128 << 10

// failureLen is one failure record: the client address as 16 octets
// (IPv4-mapped for IPv4) and the kelisten.Fail* reason.
const failureLen = 17

// maxFailuresPerMessage keeps a failure message far below maxMessage.
const maxFailuresPerMessage = 1024

var errMessage = errors.New("keproc: malformed message")

// Failure is one refused or failed NTS-KE session, for the audit trail.
type Failure struct {
	Addr   netip.Addr
	Reason uint8
}

func appendFailure(b []byte, f Failure) []byte {
	a := f.Addr.As16()
	b = append(b, a[:]...)
	return append(b, f.Reason)
}

// parseFailures decodes a msgFailures payload. A reason kelisten does not
// name, or a length that is not whole records, fails the whole message: it
// can only come from a helper that is not ours or not well.
func parseFailures(p []byte, emit func(Failure)) error {
	if len(p) == 0 || len(p)%failureLen != 0 || len(p)/failureLen > maxFailuresPerMessage {
		return fmt.Errorf("%w: failure records of %d octets", errMessage, len(p))
	}
	for i := failureLen - 1; i < len(p); i += failureLen {
		if why := p[i]; why == kelisten.FailNone || kelisten.FailureName(why) == "unknown" {
			return fmt.Errorf("%w: failure reason %d", errMessage, why)
		}
	}
	for i := 0; i < len(p); i += failureLen {
		emit(Failure{Addr: netip.AddrFrom16([16]byte(p[i : i+16])).Unmap(), Reason: p[i+16]})
	}
	return nil
}

// encodeCert is a certificate message: the PEM chain's length (4 octets),
// the PEM chain, the PEM private key.
func encodeCert(chainPEM, keyPEM []byte) []byte {
	b := make([]byte, 0, 1+4+len(chainPEM)+len(keyPEM))
	b = append(b, msgCert)
	b = binary.BigEndian.AppendUint32(b, uint32(len(chainPEM)))
	b = append(b, chainPEM...)
	return append(b, keyPEM...)
}

func parseCert(p []byte) (chainPEM, keyPEM []byte, err error) {
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: certificate message of %d octets", errMessage, len(p))
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) || n == 0 || int(n) == len(p)-4 {
		return nil, nil, fmt.Errorf("%w: certificate chain of %d octets in %d", errMessage, n, len(p)-4)
	}
	return p[4 : 4+n], p[4+n:], nil
}
