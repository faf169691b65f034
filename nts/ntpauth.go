package nts

import (
	"crypto/rand"
	"io"
	"sync"

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

	// ciphers recycles the per-request AES-SIV state (siv.Cipher: C2S to
	// verify a request, S2C to seal its reply), so that a request allocates
	// nothing but the AES key schedules that crypto/aes insists on
	// allocating. A Server must not be copied after first use.
	ciphers sync.Pool
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
func (s *Server) Open(req, fields []byte) (ntp.NTSState, ntp.Reason) {
	var st ntp.NTSState
	q, ok := scanRequest(req, fields)
	st.UID = q.uid
	if !ok {
		return st, ntp.ReasonBadNTS
	}
	ring := s.ring()
	if ring == nil {
		return st, ntp.ReasonNTSDisabled
	}
	c, err := ring.OpenCookie(q.cookie)
	if err != nil {
		return st, ntp.ReasonBadCookie
	}
	var encrypted int
	switch c.AEAD {
	case AEADAESSIVCMAC256:
		encrypted, ok = s.verify(&c, req, &q)
	case AEADAES128GCMSIV:
		encrypted, ok = verifyGCMSIV(&c, req, &q)
	default:
		ok = false
	}
	if !ok || q.placeholders+encrypted > maxPlaceholders {
		return st, ntp.ReasonBadNTS
	}
	st.Cookies = 1 + q.placeholders + encrypted
	st.CookieLen = len(q.cookie)
	st.AEAD = c.AEAD
	st.KeyLen = aeadKeyLen(c.AEAD)
	copy(st.C2S[:], c.C2S[:])
	copy(st.S2C[:], c.S2C[:])
	return st, ntp.ReasonOK
}

// verify checks the request's Authenticator with C2S and counts the Cookie
// Placeholders among its encrypted fields. A request without encrypted
// fields, the usual one, costs C2S's first AES key only (siv.Cipher expands
// the CTR key when there is something to decrypt).
func (s *Server) verify(c *Cookie, req []byte, q *ntsRequest) (int, bool) {
	c2s := s.cipher()
	defer s.release(c2s)
	if c2s.SetKey(c.C2S[:]) != nil {
		return 0, false
	}
	var buf [ntp.MaxPacketLen]byte
	pt, err := c2s.Open(buf[:0], q.nonce, q.ciphertext, req[:q.authStart])
	if err != nil {
		return 0, false
	}
	return encryptedPlaceholders(pt, len(q.cookie))
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
			q.nonce, q.ciphertext, ok = parseAuthenticator(f.Value, minNonceArea)
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

// Seal appends the NTS fields of a reply (RFC 8915 §5.7) after the header:
// the Unique Identifier echoed, then an Authenticator sealed with S2C over
// everything before it, whose ciphertext holds st.Cookies new cookies as
// New Cookie fields. If they do not all fit within limit it sends fewer (a
// client asks for more next time), and none at all is a failure: a reply
// without a cookie would leave the client one cookie poorer per exchange.
// The Authenticator is padded so the reply is exactly limit octets (rounded
// down to a multiple of 4): with the usual limit, the request's length, the
// two directions then take the same time on the wire, as chrony does it.
//
// The order of the work is the point: the header's transmit timestamp is
// covered by the Authenticator, so tx.Stamp must come before the final AES-
// SIV pass, and whatever follows it delays the reply past its timestamp.
// Everything that does not depend on the header therefore comes first: the
// S2C key schedules, the nonces, the new cookies (each its own AES-SIV under
// the cookie key), written in plaintext right where their ciphertext will
// be, and the part of S2V the header does not enter (siv.Cipher.PrepareSeal).
// After the stamp remain the CMAC of the header and UID field and the CTR
// pass over the cookies (siv.Cipher.FinishSeal), in place.
func (s *Server) Seal(st ntp.NTSState, reply []byte, limit int, tx ntp.Stamper) ([]byte, bool) {
	ring := s.ring()
	if ring == nil || !supportedAEAD(st.AEAD) || st.KeyLen != aeadKeyLen(st.AEAD) || len(reply) < ntp.HeaderLen {
		return nil, false
	}
	if st.AEAD == AEADAES128GCMSIV {
		return s.sealGCMSIV(ring, st, reply, limit, tx)
	}
	hdr := len(reply) - ntp.HeaderLen
	reply = ntp.AppendExtField(reply, ntp.EFUniqueIdentifier, st.UID)
	room := limit - len(reply)
	n := min(st.Cookies, MaxCookies)
	for n > 0 && authFieldLen(n*cookieFieldLen) > room {
		n--
	}
	if n == 0 {
		return nil, false
	}
	s2c := s.cipher()
	defer s.release(s2c)
	if s2c.SetKey(st.S2C[:st.KeyLen]) != nil {
		return nil, false
	}
	r := s.rand()
	reply, w, err := beginAuth(reply, r, authNonceLen)
	if err != nil {
		return nil, false
	}
	reply = w.reserveTag(reply)
	c := Cookie{AEAD: st.AEAD}
	copy(c.C2S[:], st.C2S[:KeyLen])
	copy(c.S2C[:], st.S2C[:KeyLen])
	for range n {
		reply = appendFieldHeader(reply, ntp.EFCookie, CookieSize)
		if reply, err = ring.SealCookie(reply, c, r); err != nil {
			return nil, false
		}
	}
	reply, out, nonce := w.close(reply, room)
	s2c.PrepareSeal(out, nonce)
	tx.Stamp(reply[hdr : hdr+ntp.HeaderLen])
	s2c.FinishSeal(out, reply[hdr:w.start])
	return reply, true
}

// cipher takes a siv.Cipher from the server's pool.
func (s *Server) cipher() *siv.Cipher {
	if c, ok := s.ciphers.Get().(*siv.Cipher); ok {
		return c
	}
	return new(siv.Cipher)
}

// release wipes c (keys, subkeys, keystream) before recycling it, so no key
// of one client lingers in memory that serves the next.
func (s *Server) release(c *siv.Cipher) {
	c.Reset()
	s.ciphers.Put(c)
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
