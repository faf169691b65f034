package nts

import (
	"crypto/rand"
	"io"
)

// nonceBuf hands out octets of crypto/rand drawn nonceBufLen at a time,
// for reply and cookie nonces. Every read of crypto/rand is a getrandom
// call (the vDSO's, with its key erasure) whatever its length, and an NTS
// reply needs one nonce for its Authenticator and one per new cookie: read
// one by one they took about 1.5 % of a worker saturated with NTS
// requests, drawn ahead 0.4 % (BENCHMARKS.md). The octets may wait in
// memory before use because a nonce must be unique, not secret: it goes
// out in the clear. Each octet is handed out once. A nonceBuf lives in a
// request scratch, which one goroutine holds at a time.
type nonceBuf struct {
	b    [nonceBufLen]byte
	left int // the last left octets of b are unused; zero: draw again
}

const nonceBufLen = 512

func (n *nonceBuf) Read(p []byte) (int, error) {
	if len(p) > len(n.b) {
		return rand.Read(p)
	}
	if len(p) > n.left {
		if _, err := rand.Read(n.b[:]); err != nil {
			return 0, err
		}
		n.left = len(n.b)
	}
	start := len(n.b) - n.left
	n.left -= len(p)
	return copy(p, n.b[start:start+len(p)]), nil
}

// nonces is where a request's nonces come from: the server's Rand when a
// test set one (read directly, so that its sequence is the test's), else
// the scratch's buffer of crypto/rand.
func (s *Server) nonces(sc *scratch) io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return &sc.nonces
}
