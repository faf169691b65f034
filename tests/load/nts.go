package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"time"

	"timegate/ntp"
	"timegate/nts"
)

// maxNTSRing bounds the requests nts mode builds ahead per socket (about
// 230 bytes each): building costs an AES-SIV seal, too slow to do per
// request on the load core, so each ring slot gets one request built once.
const maxNTSRing = 1 << 16

// ntsRequests are requests built ahead, one per ring slot: request s
// carries a nonce whose low bits are s, so that Ring.Put(seq, nonce[s], …)
// with seq ≡ s keeps it, and matching works as in plain mode. A slot's
// request is resent unchanged each time the ring comes round: the server
// keeps no state per cookie or UID (RFC 8915 leaves replay detection to
// the client), so it answers every copy; a reply arriving a whole ring
// late would be counted against the next copy.
type ntsRequests struct {
	reqs   [][]byte
	nonces []uint64
	// The session and UID of slot 0's request, for the pre-flight check.
	sess0 *nts.ClientSession
	uid0  []byte
}

// keExchange runs one NTS-KE with the server at addr, trusting caFile.
func keExchange(ctx context.Context, addr, caFile string) (*nts.KEResult, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("load: -ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("load: -ca %s: no certificate", caFile)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ke, err := nts.Exchange(ctx, nil, addr, &tls.Config{RootCAs: pool}, nil)
	if err != nil {
		return nil, fmt.Errorf("load: NTS-KE with %s: %w", addr, err)
	}
	return ke, nil
}

// buildNTSRequests builds size requests from ke's cookies, each as a
// client in its steady state sends them (one cookie, no placeholders:
// chrony's usual request), with a fresh Unique Identifier.
func buildNTSRequests(ke *nts.KEResult, size int) (*ntsRequests, error) {
	r := &ntsRequests{reqs: make([][]byte, size), nonces: make([]uint64, size)}
	mask := uint64(size - 1)
	uid := make([]byte, 32)
	for s := range size {
		sess, err := nts.NewClientSession(ke)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		nonce := mrand.Uint64()&^mask | uint64(s)
		if nonce == 0 {
			nonce = mask + 1
		}
		rand.Read(uid)
		req, err := sess.BuildRequest(nil, ntp.Time64(nonce), uid, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		r.reqs[s], r.nonces[s] = req, nonce
		if s == 0 {
			r.sess0, r.uid0 = sess, bytes.Clone(uid)
		}
	}
	return r, nil
}

// preflight sends slot 0's request on c and authenticates the reply, so
// that a run counts replies of a server that really speaks NTS with the
// keys it negotiated (the run itself checks only headers).
func (r *ntsRequests) preflight(c *net.UDPConn) error {
	buf := make([]byte, recvBufSize)
	for range 3 {
		if _, err := c.Write(r.reqs[0]); err != nil {
			return fmt.Errorf("load: NTS pre-flight: %w", err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err != nil {
			continue
		}
		c.SetReadDeadline(time.Time{})
		if _, err := r.sess0.ProcessReply(buf[:n], r.uid0); err != nil {
			return fmt.Errorf("load: NTS pre-flight: the reply does not authenticate: %w", err)
		}
		return nil
	}
	c.SetReadDeadline(time.Time{})
	return fmt.Errorf("load: NTS pre-flight: no reply from %v", c.RemoteAddr())
}

// fill writes request number seq into buf and records it in w's ring; it
// returns the request's length.
func (r *ntsRequests) fill(buf []byte, w *worker, seq uint64, now int64) int {
	s := seq & uint64(len(r.reqs)-1)
	w.ring.Put(seq, r.nonces[s], now)
	return copy(buf, r.reqs[s])
}
