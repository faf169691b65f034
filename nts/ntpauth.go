package nts

import (
	"crypto/rand"
	"io"

	"timegate/ntp"
	"timegate/siv"
)

// Server is the NTS side of the NTP server path (RFC 8915 §5): it implements
// ntp.NTSHandler for ntp.Responder. It keeps no per-client state: all a
// request needs is in its cookie, opened with the key ring.
type Server struct {
	// Ring returns the key ring that opens request cookies and seals new
	// ones; loading it per request (an atomic.Pointer's Load) makes a
	// rotation apply to the next packet. Required.
	Ring func() *KeyRing
	// Rand supplies reply and cookie nonces; nil means crypto/rand.
	Rand io.Reader
}

var _ ntp.NTSHandler = (*Server)(nil)

// ntsRequest is what scanRequest finds in a request; slices alias it.
type ntsRequest struct {
	uid          []byte
	cookie       []byte
	placeholders int
	nonce        []byte
	ciphertext   []byte
	authStart    int // offset of the Authenticator: end of the associated data
}

// Open authenticates an NTS request (RFC 8915 §5.7). The steps are chrony's
// (nts_ntp_server.c): check the shape of the fields, open the cookie, verify
// the Authenticator with C2S over the raw request, read any encrypted
// fields. Anything malformed or unauthentic is ReasonBadNTS, which drops the
// request; only a well-formed request whose cookie does not open earns
// ReasonBadCookie and so an NTS NAK, which tells a client whose cookies
// outlived our keys to run NTS-KE again.
func (s *Server) Open(st *ntp.NTSState, req, fields []byte) ntp.Reason {
	q, ok := scanRequest(req, fields)
	st.UID = q.uid
	if !ok {
		return ntp.ReasonBadNTS
	}
	ring := s.ring()
	if ring == nil {
		return ntp.ReasonNTSDisabled
	}
	c, err := ring.OpenCookie(q.cookie)
	if err != nil {
		return ntp.ReasonBadCookie
	}
	if c.AEAD != AEADAESSIVCMAC256 {
		return ntp.ReasonBadNTS
	}
	c2s, err := siv.New(c.C2S[:])
	if err != nil {
		return ntp.ReasonBadNTS
	}
	var buf [ntp.MaxPacketLen]byte
	pt, err := c2s.Open(buf[:0], q.nonce, q.ciphertext, req[:q.authStart])
	if err != nil {
		return ntp.ReasonBadNTS
	}
	encrypted, ok := encryptedPlaceholders(pt, len(q.cookie))
	if !ok || q.placeholders+encrypted > maxPlaceholders {
		return ntp.ReasonBadNTS
	}
	st.Cookies = 1 + q.placeholders + encrypted
	st.CookieLen = len(q.cookie)
	st.AEAD = c.AEAD
	st.KeyLen = KeyLen
	copy(st.C2S[:], c.C2S[:])
	copy(st.S2C[:], c.S2C[:])
	return ntp.ReasonOK
}

// scanRequest checks the shape of an NTS request, strictly as chrony does
// and stricter where the RFC allows: exactly one Unique Identifier of
// minUIDLen..maxUIDLen octets (§5.3), exactly one Cookie of at most
// MaxCookieLen octets (§5.4), at most maxPlaceholders Cookie Placeholders
// each exactly as long as the cookie (§5.5: so the reply, which carries a
// cookie per placeholder, is no longer than the request), and exactly one
// Authenticator that ends the packet (§5.6: nothing after it would be
// authenticated; a MAC trailer is not allowed either). Fields of other types
// before the Authenticator are ignored, as chrony does: RFC 7822 gives NTP
// extension fields no critical bit, and they are still authenticated as
// associated data. The UID is returned whenever it is well formed, so that
// an NTS NAK can echo it.
func scanRequest(req, fields []byte) (ntsRequest, bool) {
	var q ntsRequest
	var uids, cookies, auths int
	p := ntp.Packet{Fields: fields}
	it := p.ExtFields()
	cookieLen := -1
	for f, ok := it.Next(); ok; f, ok = it.Next() {
		switch f.Type {
		case ntp.EFUniqueIdentifier:
			if uids++; uids == 1 && len(f.Value) >= minUIDLen && len(f.Value) <= maxUIDLen {
				q.uid = f.Value
			}
		case ntp.EFCookie:
			cookies++
			q.cookie = f.Value
		case ntp.EFCookiePlaceholder:
			q.placeholders++
			if cookieLen < 0 {
				cookieLen = len(f.Value)
			} else if cookieLen != len(f.Value) {
				return q, false
			}
		case ntp.EFAuthenticator:
			auths++
			q.authStart = f.Offset
			q.nonce, q.ciphertext, ok = parseAuthenticator(f.Value)
			if !ok || f.Offset+efHeaderLen+len(f.Value) != len(req) {
				return q, false
			}
		}
	}
	if uids != 1 {
		q.uid = nil
	}
	ok := q.uid != nil && cookies == 1 && auths == 1 &&
		len(q.cookie) <= MaxCookieLen && q.placeholders <= maxPlaceholders &&
		(cookieLen < 0 || cookieLen == len(q.cookie)) &&
		ntp.HeaderLen+len(fields) == len(req)
	return q, ok
}

// encryptedPlaceholders counts the Cookie Placeholders among the fields a
// client encrypted (chrony counts them too: they ask for cookies just as
// plain ones do, and they also made the request longer by a cookie's
// length). Other encrypted fields are ignored; malformed ones fail.
func encryptedPlaceholders(pt []byte, cookieLen int) (int, bool) {
	n := 0
	w := efWalker{rest: pt}
	for typ, v, ok := w.next(); ok; typ, v, ok = w.next() {
		if typ != ntp.EFCookiePlaceholder {
			continue
		}
		if n++; len(v) != cookieLen {
			return n, false
		}
	}
	return n, !w.bad
}

// Seal appends the NTS fields of a reply (RFC 8915 §5.7) after the finished
// header: the Unique Identifier echoed, then an Authenticator sealed with
// S2C over everything before it, whose ciphertext holds st.Cookies new
// cookies as New Cookie fields. If they do not all fit within limit it sends
// fewer (a client asks for more next time), and none at all is a failure:
// a reply without a cookie would leave the client one cookie poorer per
// exchange. The Authenticator is padded so the reply is exactly limit
// octets (rounded down to a multiple of 4): with the usual limit, the
// request's length, the two directions then take the same time on the wire,
// as chrony does it.
func (s *Server) Seal(st *ntp.NTSState, reply []byte, limit int) ([]byte, bool) {
	ring := s.ring()
	if ring == nil || st.AEAD != AEADAESSIVCMAC256 || st.KeyLen != KeyLen || len(reply) < ntp.HeaderLen {
		return nil, false
	}
	adStart := len(reply) - ntp.HeaderLen
	reply = ntp.AppendExtField(reply, ntp.EFUniqueIdentifier, st.UID)
	room := limit - len(reply)
	n := min(st.Cookies, MaxCookies)
	for n > 0 && authFieldLen(n*cookieFieldLen) > room {
		n--
	}
	if n == 0 {
		return nil, false
	}
	s2c, err := siv.New(st.S2C[:st.KeyLen])
	if err != nil {
		return nil, false
	}
	r := s.rand()
	reply, w, err := beginAuth(reply, r)
	if err != nil {
		return nil, false
	}
	c := Cookie{AEAD: st.AEAD}
	copy(c.C2S[:], st.C2S[:KeyLen])
	copy(c.S2C[:], st.S2C[:KeyLen])
	for range n {
		reply = appendFieldHeader(reply, ntp.EFCookie, CookieSize)
		if reply, err = ring.SealCookie(reply, c, r); err != nil {
			return nil, false
		}
	}
	return w.finish(reply, s2c, adStart, room), true
}

func (s *Server) ring() *KeyRing {
	if s.Ring == nil {
		return nil
	}
	return s.Ring()
}

func (s *Server) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}
