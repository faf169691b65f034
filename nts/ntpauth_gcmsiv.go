package nts

import (
	"timegate/gcmsiv"
	"timegate/ntp"
)

// The NTP path with AEAD_AES_128_GCM_SIV (30, RFC 8452). It differs from
// AEAD 15's in three ways: the Authenticator nonce is exactly 12 octets;
// the keys are 16 octets, so cookies are 72 octets, not 104; and sealing
// cannot be split around the transmit timestamp, since POLYVAL takes the
// header (which holds it) first and the encryption needs the finished tag:
// the reply is stamped once the cookies are sealed, then sealed whole.

// verifyGCMSIV checks the request's Authenticator with C2S (see verify).
func verifyGCMSIV(c *Cookie, req []byte, q *ntsRequest) (int, bool) {
	if len(q.nonce) != gcmsiv.NonceSize {
		return 0, false
	}
	a, err := gcmsiv.New(c.C2S[:aeadKeyLen(AEADAES128GCMSIV)])
	if err != nil {
		return 0, false
	}
	var buf [ntp.MaxPacketLen]byte
	pt, err := a.Open(buf[:0], q.nonce, q.ciphertext, req[:q.authStart])
	if err != nil {
		return 0, false
	}
	return encryptedPlaceholders(pt, len(q.cookie))
}

// sealGCMSIV is Seal for AEAD 30: the UID echoed, then an Authenticator
// sealed with S2C whose plaintext holds the new cookies, padded to limit.
func (s *Server) sealGCMSIV(sc *scratch, ring *KeyRing, o *opened, reply []byte, limit int, tx ntp.Stamper) ([]byte, bool) {
	kl := aeadKeyLen(AEADAES128GCMSIV)
	a, err := gcmsiv.New(o.cookie.S2C[:kl])
	if err != nil {
		return nil, false
	}
	hdr := len(reply) - ntp.HeaderLen
	reply = ntp.AppendExtField(reply, ntp.EFUniqueIdentifier, o.uid)
	room := limit - len(reply)
	fieldLen := efHeaderLen + CookieSizeGCMSIV
	n := min(o.cookies, MaxCookies)
	for n > 0 && authFieldLen(n*fieldLen) > room {
		n--
	}
	if n == 0 {
		return nil, false
	}
	r := s.nonces(sc)
	reply, w, err := beginAuth(reply, r, gcmsiv.NonceSize)
	if err != nil {
		return nil, false
	}
	for range n {
		reply = appendFieldHeader(reply, ntp.EFCookie, CookieSizeGCMSIV)
		if reply, err = ring.SealCookie(reply, o.cookie, r); err != nil {
			return nil, false
		}
	}
	tx.Stamp(reply[hdr : hdr+ntp.HeaderLen])
	return w.finish(reply, a, hdr, room), true
}
