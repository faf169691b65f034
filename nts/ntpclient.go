package nts

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"io"

	"timegate/gcmsiv"
	"timegate/ntp"
	"timegate/siv"
)

// Errors of the NTS client on the NTP path (RFC 8915 §5.7). Only a nil
// error from ProcessReply means the reply is authentic.
var (
	// ErrNTSNAK: the server answered with an NTS NAK (kiss code NTSN and our
	// Unique Identifier, unauthenticated): it could not open our cookie.
	// The cure is a new NTS-KE session; an attacker can forge a NAK, so a
	// client should see no authentic reply for a while before it acts.
	ErrNTSNAK = errors.New("nts: server sent an NTS NAK (cookie rejected): run NTS-KE again")
	// ErrNoCookies: the jar is empty; only a new NTS-KE session refills it.
	ErrNoCookies = errors.New("nts: no cookies left: run NTS-KE again")
	// ErrUIDMismatch: the reply does not echo the Unique Identifier of our
	// request: it answers another request, or is forged or replayed.
	ErrUIDMismatch = errors.New("nts: reply does not echo our Unique Identifier")
	// ErrUnauthenticated: the reply has no Authenticator and is not an NTS
	// NAK. Its time must not be used.
	ErrUnauthenticated = errors.New("nts: reply is not authenticated")
	// ErrReplyAuth: the Authenticator is malformed or does not verify under
	// S2C, or the encrypted fields are malformed.
	ErrReplyAuth = errors.New("nts: reply authentication failed")
	// ErrReplyMalformed: the reply's NTS fields break RFC 8915 §5 framing.
	ErrReplyMalformed = errors.New("nts: malformed NTS reply")
	// ErrUIDLength: a Unique Identifier outside minUIDLen..maxUIDLen.
	ErrUIDLength = errors.New("nts: unique identifier must be 32 to 256 octets")
)

// ClientSession is the client side of NTS for NTP with one server (RFC 8915
// §5.7): the AEAD keys from NTS-KE and a jar of cookies, each sent once. It
// is pure (no I/O, no clock) and not safe for concurrent use: an
// association owns it.
type ClientSession struct {
	// AEAD is the negotiated algorithm: AEAD_AES_SIV_CMAC_256 (15) or
	// AEAD_AES_128_GCM_SIV (30).
	AEAD uint16
	// Poll is the poll exponent written into requests.
	Poll     int8
	c2s, s2c cipher.AEAD
	jar      [][]byte // oldest first; every cookie a private copy
}

// NewClientSession starts a session from the result of an NTS-KE exchange.
func NewClientSession(ke *KEResult) (*ClientSession, error) {
	if !supportedAEAD(ke.AEAD) {
		return nil, ErrUnsupportedAEAD
	}
	if n := aeadKeyLen(ke.AEAD); len(ke.C2S) != n || len(ke.S2C) != n {
		return nil, ErrExport
	}
	c2s, err := newSessionAEAD(ke.AEAD, ke.C2S)
	if err != nil {
		return nil, err
	}
	s2c, err := newSessionAEAD(ke.AEAD, ke.S2C)
	if err != nil {
		return nil, err
	}
	s := &ClientSession{AEAD: ke.AEAD, c2s: c2s, s2c: s2c}
	for _, c := range ke.Cookies {
		s.addCookie(c)
	}
	if len(s.jar) == 0 {
		return nil, ErrNoCookies
	}
	return s, nil
}

func newSessionAEAD(aead uint16, key []byte) (cipher.AEAD, error) {
	if aead == AEADAES128GCMSIV {
		return gcmsiv.New(key)
	}
	return siv.New(key)
}

// Cookies is the number of unused cookies in the jar.
func (s *ClientSession) Cookies() int { return len(s.jar) }

// CookieLen is the length of the cookie the next request will carry, or 0.
func (s *ClientSession) CookieLen() int {
	if len(s.jar) == 0 {
		return 0
	}
	return len(s.jar[0])
}

func (s *ClientSession) addCookie(c []byte) bool {
	if len(s.jar) >= MaxCookies || len(c) == 0 || len(c) > MaxCookieLen {
		return false
	}
	s.jar = append(s.jar, bytes.Clone(c))
	return true
}

// BuildRequest appends an NTS-protected NTPv4 client request to dst
// (RFC 8915 §5.7):
//
//	+--------+-----+--------+----------------------+---------------+
//	| header | UID | Cookie | Cookie Placeholder × | Authenticator |
//	| 48     |     |        | 8 − cookies left − 1 | (C2S, empty)  |
//	+--------+-----+--------+----------------------+---------------+
//
// nonce is the transmit timestamp (a random value, not the clock: see
// ntp.ClientRequest); uid (32 to 256 octets, random and kept to match the
// reply) is the Unique Identifier; rand supplies the AEAD nonce. The cookie
// leaves the jar whether or not a reply comes: reusing it would let an
// observer link the requests (RFC 8915 §5.7). The placeholders ask for as
// many cookies as refill the jar to MaxCookies, as far as the request stays
// within ntp.MaxPacketLen.
func (s *ClientSession) BuildRequest(dst []byte, nonce ntp.Time64, uid []byte, rand io.Reader) ([]byte, error) {
	return s.BuildRequestStamps(dst, ntp.RequestStamps{Transmit: nonce}, uid, rand)
}

// BuildRequestStamps is BuildRequest for a request carrying all of ts: an
// interleaved request (RFC 9769) has origin and receive timestamps too,
// which the Authenticator covers like the rest of the header.
func (s *ClientSession) BuildRequestStamps(dst []byte, ts ntp.RequestStamps, uid []byte, rand io.Reader) ([]byte, error) {
	if len(uid) < minUIDLen || len(uid) > maxUIDLen {
		return nil, ErrUIDLength
	}
	if len(s.jar) == 0 {
		return nil, ErrNoCookies
	}
	cookie := s.jar[0]
	start := len(dst)
	dst = ntp.ClientRequestStamps(dst, 4, s.Poll, ts)
	dst = ntp.AppendExtField(dst, ntp.EFUniqueIdentifier, uid)
	dst = ntp.AppendExtField(dst, ntp.EFCookie, cookie)
	value := ntp.ExtFieldLen(len(cookie)) - efHeaderLen
	for range s.placeholders(len(uid), len(cookie)) {
		dst = appendFieldHeader(dst, ntp.EFCookiePlaceholder, value)
		dst = append(dst, make([]byte, value)...)
	}
	dst, w, err := beginAuth(dst, rand, nonceLenFor(s.AEAD))
	if err != nil {
		return nil, err
	}
	s.jar[0] = nil
	s.jar = s.jar[1:]
	return w.finish(dst, s.c2s, start, 0), nil
}

// placeholders is how many Cookie Placeholders the next request carries:
// enough to refill the jar to MaxCookies, but no more than keep the request
// within ntp.MaxPacketLen, beyond which servers do not even parse it.
func (s *ClientSession) placeholders(uidLen, cookieLen int) int {
	fixed := ntp.HeaderLen + ntp.ExtFieldLen(uidLen) + ntp.ExtFieldLen(cookieLen) + authFieldLen(0)
	return max(0, min(MaxCookies-len(s.jar), (ntp.MaxPacketLen-fixed)/ntp.ExtFieldLen(cookieLen)))
}

// ProcessReply authenticates a reply to a request built with uid and adds
// the cookies it carries to the jar, returning how many it added. It checks
// only NTS: the caller checks the header (origin timestamp, stratum...)
// with ntp.CheckReply, and must see the origin match before acting on
// ErrNTSNAK, which is unauthenticated by nature (RFC 8915 §5.7).
//
// Errors: ErrUIDMismatch when the UID is missing or differs (keep waiting
// for the real reply); ErrNTSNAK for an NTS NAK; ErrUnauthenticated when
// there is no Authenticator; ErrReplyAuth or ErrReplyMalformed otherwise.
// A reply is authentic only with a nil error.
func (s *ClientSession) ProcessReply(reply, uid []byte) (int, error) {
	p, err := ntp.Parse(reply)
	if err != nil || len(p.MAC) != 0 {
		return 0, ErrReplyMalformed
	}
	var uids, auths int
	var auth ntp.ExtField
	it := p.ExtFields()
	for f, ok := it.Next(); ok; f, ok = it.Next() {
		switch f.Type {
		case ntp.EFUniqueIdentifier:
			uids++
			if uids > 1 || !uidMatches(f.Value, uid) {
				return 0, ErrUIDMismatch
			}
		case ntp.EFAuthenticator:
			if auths++; auths > 1 || f.Offset+efHeaderLen+len(f.Value) != len(reply) {
				return 0, ErrReplyMalformed
			}
			auth = f
		}
	}
	switch {
	case uids == 0:
		return 0, ErrUIDMismatch
	case auths == 0 && p.Header.Stratum == 0 && p.Header.RefID == uint32(ntp.KissNTSN):
		return 0, ErrNTSNAK
	case auths == 0:
		return 0, ErrUnauthenticated
	}
	return s.openReply(reply, auth)
}

// uidMatches compares an echoed UID value with ours, as AppendExtField
// padded it: our octets, then zeros up to the field's length.
func uidMatches(v, uid []byte) bool {
	return len(v) == ntp.ExtFieldLen(len(uid))-efHeaderLen &&
		bytes.Equal(v[:len(uid)], uid) && allZero(v[len(uid):])
}

// openReply verifies the Authenticator with S2C over everything before it
// and takes the New Cookie fields of the plaintext into the jar. The
// cookies are taken only once the whole plaintext parsed.
func (s *ClientSession) openReply(reply []byte, auth ntp.ExtField) (int, error) {
	nonce, ct, ok := parseAuthenticator(auth.Value, 0)
	if !ok || (s.AEAD == AEADAES128GCMSIV && len(nonce) != gcmsiv.NonceSize) {
		return 0, ErrReplyAuth
	}
	var buf [ntp.MaxPacketLen]byte
	pt, err := s.s2c.Open(buf[:0], nonce, ct, reply[:auth.Offset])
	if err != nil {
		return 0, ErrReplyAuth
	}
	if !wellFormed(pt) {
		return 0, ErrReplyAuth
	}
	added := 0
	w := efWalker{rest: pt}
	for typ, v, ok := w.next(); ok; typ, v, ok = w.next() {
		if typ == ntp.EFCookie && s.addCookie(v) {
			added++
		}
	}
	return added, nil
}
