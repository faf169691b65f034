package nts

import (
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
	// Rand supplies reply and cookie nonces; nil means crypto/rand, drawn
	// ahead (nonceBuf).
	Rand io.Reader

	// scratches recycles per-request memory (see scratch). sync.Pool keeps
	// one per CPU in practice, so the workers of the UDP edge, one per CPU,
	// do not share it. A Server must not be copied after first use.
	scratches sync.Pool
}

var _ ntp.NTSHandler = (*Server)(nil)

// scratch is the memory one request works in: the AES-SIV state for
// verifying it (C2S) and sealing its reply (S2C), and the expanded keys of
// recent clients, so that a request allocates nothing.
type scratch struct {
	c2s, s2c siv.Cipher
	keys     keyCache
	batch    *batchScratch // RespondBatch's, taken when first needed
	nonces   nonceBuf
}

// ntsRequest is what checkRequest finds in a request; slices alias it.
type ntsRequest struct {
	uid          []byte
	cookie       []byte
	placeholders int
	nonce        []byte
	ciphertext   []byte
	authStart    int // offset of the Authenticator: end of the associated data
}

// opened is an authenticated request: what its reply needs.
type opened struct {
	uid     []byte
	cookies int    // cookies the reply must carry: 1 + placeholders (RFC 8915 §5.7)
	cookie  Cookie // the AEAD and keys the request's cookie held
	keys    *cachedKeys
}

// Respond answers an NTS request (RFC 8915 §5.7) in one pass: check the
// fields' shape from what ntp.Parse found, open the cookie, verify the
// Authenticator with C2S, seal the reply with S2C. A well-formed request
// whose cookie does not open earns an NTS NAK; anything else that is wrong
// earns nothing.
func (s *Server) Respond(reply, req []byte, f ntp.NTSFields, limit int, tx ntp.Stamper) ([]byte, ntp.Reason) {
	ring := s.ring()
	if ring == nil {
		return nil, ntp.ReasonNTSDisabled
	}
	sc := s.scratch()
	defer s.release(sc)
	return s.respondOne(sc, ring, reply, req, f, limit, tx)
}

// respondOne is Respond with the ring loaded and a scratch taken.
func (s *Server) respondOne(sc *scratch, ring *KeyRing, reply, req []byte, f ntp.NTSFields, limit int, tx ntp.Stamper) ([]byte, ntp.Reason) {
	o, reason := s.open(sc, ring, req, &f)
	switch reason {
	case ntp.ReasonOK:
	case ntp.ReasonBadCookie:
		return appendNAK(reply[:max(0, len(reply)-ntp.HeaderLen)], req, o.uid), reason
	default:
		return nil, reason
	}
	out, ok := s.seal(sc, ring, &o, reply, limit, tx)
	if !ok {
		return nil, ntp.ReasonNoRoom
	}
	return out, ntp.ReasonOK
}

// open authenticates a request. The steps are chrony's (nts_ntp_server.c):
// check the shape of the fields, open the cookie, verify the Authenticator
// with C2S over the raw request, read any encrypted fields. Anything
// malformed or unauthentic is ReasonBadNTS, which drops the request; only a
// well-formed request whose cookie does not open earns ReasonBadCookie and
// so an NTS NAK, which tells a client whose cookies outlived our keys to
// run NTS-KE again.
func (s *Server) open(sc *scratch, ring *KeyRing, req []byte, f *ntp.NTSFields) (opened, ntp.Reason) {
	var q ntsRequest
	ok := checkRequest(&q, req, f)
	o := opened{uid: q.uid}
	if !ok {
		return o, ntp.ReasonBadNTS
	}
	var err error
	if o.cookie, err = ring.OpenCookie(q.cookie); err != nil {
		return o, ntp.ReasonBadCookie
	}
	var encrypted int
	switch o.cookie.AEAD {
	case AEADAESSIVCMAC256:
		if o.keys, err = sc.keys.lookup(&o.cookie); err != nil {
			return o, ntp.ReasonBadNTS
		}
		encrypted, ok = verify(&sc.c2s, &o.keys.c2s, req, &q)
	case AEADAES128GCMSIV:
		// RFC 8452 derives a key per message: there is no schedule to cache.
		encrypted, ok = verifyGCMSIV(&o.cookie, req, &q)
	default:
		ok = false
	}
	if !ok || q.placeholders+encrypted > maxPlaceholders {
		return o, ntp.ReasonBadNTS
	}
	o.cookies = 1 + q.placeholders + encrypted
	return o, ntp.ReasonOK
}

// verify checks the request's Authenticator with C2S and counts the Cookie
// Placeholders among its encrypted fields.
func verify(c2s *siv.Cipher, key *siv.Key, req []byte, q *ntsRequest) (int, bool) {
	c2s.UseKey(key)
	defer c2s.Reset()
	var buf [ntp.MaxPacketLen]byte
	pt, err := c2s.Open(buf[:0], q.nonce, q.ciphertext, req[:q.authStart])
	if err != nil {
		return 0, false
	}
	return encryptedPlaceholders(pt, len(q.cookie))
}

// checkRequest checks the shape of an NTS request from the fields ntp.Parse
// located, strictly as chrony does and stricter where the RFC allows:
// exactly one Unique Identifier of minUIDLen..maxUIDLen octets (§5.3),
// exactly one Cookie of at most MaxCookieLen octets (§5.4), at most
// maxPlaceholders Cookie Placeholders each exactly as long as the cookie
// (§5.5: so the reply, which carries a cookie per placeholder, is no longer
// than the request), and exactly one Authenticator that ends the packet
// (§5.6: nothing after it would be authenticated; a MAC trailer is not
// allowed either). Fields of other types before the Authenticator are
// ignored, as chrony does: RFC 7822 gives NTP extension fields no critical
// bit, and they are still authenticated as associated data. q.uid is set
// whenever the UID is well formed, so that an NTS NAK can echo it.
//
// It fills q in place (the batch path's request records): a returned
// ntsRequest would be copied in 16-octet moves just after its 8-octet
// stores, which stalls (siv's padded).
func checkRequest(q *ntsRequest, req []byte, f *ntp.NTSFields) bool {
	*q = ntsRequest{} // then field by field: a literal is built aside and copied
	q.cookie, q.placeholders, q.authStart = f.Cookie, int(f.Placeholders), f.AuthOffset
	if f.UIDs == 1 && len(f.UID) >= minUIDLen && len(f.UID) <= maxUIDLen {
		q.uid = f.UID
	}
	if f.Auths != 1 {
		return false
	}
	var ok bool
	q.nonce, q.ciphertext, ok = parseAuthenticator(f.Auth, minNonceArea)
	return ok && f.AuthOffset+efHeaderLen+len(f.Auth) == len(req) &&
		q.uid != nil && f.Cookies == 1 &&
		len(q.cookie) <= MaxCookieLen && q.placeholders <= maxPlaceholders &&
		(f.Placeholders == 0 || f.PlaceholderLen == len(q.cookie))
}

// appendNAK appends to dst an NTS NAK for req (RFC 8915 §5.7): a kiss with
// code NTSN echoing the Unique Identifier, unauthenticated, and nothing
// else. A request without a well-formed UID gets nothing (nil): the
// client could not match the NAK to its request.
func appendNAK(dst, req []byte, uid []byte) []byte {
	h, err := ntp.DecodeHeader(req)
	if uid == nil || err != nil {
		return nil
	}
	k := ntp.KissHeader(&h, ntp.KissNTSN)
	return ntp.AppendExtField(k.Append(dst), ntp.EFUniqueIdentifier, uid)
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

// seal appends the NTS fields of a reply (RFC 8915 §5.7) after the header:
// the Unique Identifier echoed, then an Authenticator sealed with S2C over
// everything before it, whose ciphertext holds o.cookies new cookies as
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
// S2C keys (expanded once per client, see keyCache), the nonces, the new
// cookies (each its own AES-SIV under the cookie key), written in plaintext
// right where their ciphertext will be, and the part of S2V the header does
// not enter (siv.Cipher.PrepareSeal). After the stamp remain the CMAC of the
// header and UID field and the CTR pass over the cookies
// (siv.Cipher.FinishSeal), in place.
func (s *Server) seal(sc *scratch, ring *KeyRing, o *opened, reply []byte, limit int, tx ntp.Stamper) ([]byte, bool) {
	if len(reply) < ntp.HeaderLen {
		return nil, false
	}
	if o.cookie.AEAD == AEADAES128GCMSIV {
		return s.sealGCMSIV(sc, ring, o, reply, limit, tx)
	}
	hdr := len(reply) - ntp.HeaderLen
	reply = ntp.AppendExtField(reply, ntp.EFUniqueIdentifier, o.uid)
	room := limit - len(reply)
	n := min(o.cookies, MaxCookies)
	for n > 0 && authFieldLen(n*cookieFieldLen) > room {
		n--
	}
	if n == 0 {
		return nil, false
	}
	s2c := &sc.s2c
	s2c.UseKey(&o.keys.s2c)
	defer s2c.Reset()
	r := s.nonces(sc)
	reply, w, err := beginAuth(reply, r, authNonceLen)
	if err != nil {
		return nil, false
	}
	reply = w.reserveTag(reply)
	for range n {
		reply = appendFieldHeader(reply, ntp.EFCookie, CookieSize)
		if reply, err = ring.SealCookie(reply, o.cookie, r); err != nil {
			return nil, false
		}
	}
	reply, out, nonce := w.close(reply, room)
	s2c.PrepareSeal(out, nonce)
	tx.Stamp(reply[hdr : hdr+ntp.HeaderLen])
	s2c.FinishSeal(out, reply[hdr:w.start])
	return reply, true
}

// scratch takes a request's memory from the server's pool.
func (s *Server) scratch() *scratch {
	if sc, ok := s.scratches.Get().(*scratch); ok {
		return sc
	}
	return new(scratch)
}

// release returns sc to the pool. Its Ciphers were wiped (keys, S2V
// state, keystream) as each finished; the key cache is kept on purpose.
func (s *Server) release(sc *scratch) { s.scratches.Put(sc) }

func (s *Server) ring() *KeyRing {
	if s.Ring == nil {
		return nil
	}
	return s.Ring()
}
