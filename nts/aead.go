package nts

import "timegate/siv"

// cookieAEAD seals cookies: AES-SIV-CMAC-256 (RFC 5297), the AEAD that RFC
// 8915 §6 suggests for cookies. SIV stays secure when a random nonce repeats,
// which matters for a key that seals billions of cookies with random nonces.
// The concrete type (not an interface) lets escape analysis keep OpenCookie's
// scratch buffer on the stack. *siv.AEAD is safe for concurrent use, so rings
// that share a key share its instance.
type cookieAEAD = *siv.AEAD

func newCookieAEAD(key []byte) (cookieAEAD, error) { return siv.New(key) }
