package upstream

import (
	"errors"
	"io"

	"timegate/ntp"
	"timegate/nts"
)

// ErrNeedKey is returned by Auth.Request when the association cannot authenticate
// another request without a new NTS-KE session (the cookie jar is empty).
var ErrNeedKey = errors.New("upstream: NTS cookies exhausted: a new NTS-KE session is needed")

// ntpVersion is the version of every request a Source sends (RFC 5905). chrony answers
// v4 keyed requests for AES-CMAC and SHA1 keys, and NTS is defined over v4 only.
const ntpVersion = 4

// AuthVerdict is what Auth.Check makes of a reply.
type AuthVerdict uint8

// Auth verdicts.
const (
	// AuthOK: the reply is authentic, or the association uses no authentication.
	AuthOK AuthVerdict = iota
	// AuthFailed: the reply is not authentic; it is ignored and the source keeps waiting
	// for the real one, so a forger cannot even use up a request.
	AuthFailed
	// AuthNAK: an NTS NAK that echoes the Unique Identifier of our request. RFC 8915 §5.7
	// sends it unauthenticated (the server could not open our cookie, so it has no keys);
	// the UID, which only the server and on-path observers saw, is its only proof.
	AuthNAK
)

// Auth is how an association authenticates its requests and checks the replies: none,
// a symmetric key (RFC 8573), or an NTS session (RFC 8915). It keeps the Source pure:
// the cryptography is behind this interface and the Source only sees verdicts.
type Auth interface {
	// Authenticated reports whether replies carry authentication. An authenticated
	// association acts on nothing unauthenticated, kisses included.
	Authenticated() bool
	// Request appends a client request carrying ts (the transmit timestamp a random
	// nonce; origin and receive set only in interleaved mode) to dst. token is whatever
	// Check needs to match the reply (the NTS Unique Identifier); rand supplies the
	// randomness the method needs.
	Request(dst []byte, ts ntp.RequestStamps, poll int8, rand io.Reader) (pkt, token []byte, err error)
	// Check authenticates a reply to the request that produced token. The Source calls
	// it only after the origin timestamp matched.
	Check(reply, token []byte) AuthVerdict
}

// NoAuth is an unauthenticated association: plain mode-3 requests, replies taken as they
// come (after the origin test, which is all that protects them). Version is the NTP
// version of the requests (chrony's `version` option); 0 means 4.
type NoAuth struct {
	Version uint8
}

// Authenticated is false.
func (NoAuth) Authenticated() bool { return false }

// Request builds a plain request.
func (n NoAuth) Request(dst []byte, ts ntp.RequestStamps, poll int8, _ io.Reader) ([]byte, []byte, error) {
	vn := n.Version
	if vn == 0 {
		vn = ntpVersion
	}
	return ntp.ClientRequestStamps(dst, vn, poll, ts), nil, nil
}

// Check accepts everything.
func (NoAuth) Check([]byte, []byte) AuthVerdict { return AuthOK }

// KeyAuth authenticates with a symmetric key (RFC 8573 AES-CMAC, or a digest):
// the request and the reply carry the 4-octet key ID and the MAC of everything before
// it, the way ntp.Responder.respondKeyed answers. Version is the NTP version of the
// requests: 3 for digests longer than 20 octets, so that the whole digest is carried
// (chrony sends NTPv3 for such keys and answers NTPv3), 4 otherwise; 0 means 4.
type KeyAuth struct {
	ID      uint32
	Key     ntp.MACKey
	Version uint8
}

func (k KeyAuth) version() uint8 {
	if k.Version == 0 {
		return ntpVersion
	}
	return k.Version
}

// Authenticated is true.
func (KeyAuth) Authenticated() bool { return true }

// Request builds a request with a MAC trailer.
func (k KeyAuth) Request(dst []byte, ts ntp.RequestStamps, poll int8, _ io.Reader) ([]byte, []byte, error) {
	start := len(dst)
	dst = ntp.ClientRequestStamps(dst, k.version(), poll, ts)
	dst = append(dst, byte(k.ID>>24), byte(k.ID>>16), byte(k.ID>>8), byte(k.ID))
	return k.Key.SumTrunc(dst, dst[start:len(dst)-4], k.Key.MACLen(k.version())), nil, nil
}

// Check verifies the MAC over the raw received bytes (never a re-serialisation), with
// our key ID and a digest of exactly the length our request carried (the Source has
// already checked that the reply's version is the request's). A crypto-NAK (a bare key ID of 0,
// RFC 5905 §7.4) is unauthenticated and fails like any other bad MAC.
func (k KeyAuth) Check(reply, _ []byte) AuthVerdict {
	p, err := ntp.Parse(reply)
	if err != nil {
		return AuthFailed
	}
	id, ok := p.KeyID()
	digest := p.Digest()
	if !ok || id != k.ID || len(digest) != k.Key.MACLen(k.version()) {
		return AuthFailed
	}
	if !k.Key.Verify(reply[:len(reply)-len(p.MAC)], digest) {
		return AuthFailed
	}
	return AuthOK
}

// uidLen is the Unique Identifier we send: RFC 8915 §5.3's minimum of 32 random octets,
// what chrony and ntpd-rs send.
const uidLen = 32

// NTSAuth authenticates with an NTS session (RFC 8915 §5.7): each request carries a
// fresh random Unique Identifier, one cookie and placeholders asking for refills, and
// an Authenticator under C2S; each reply must echo the UID and verify under S2C.
type NTSAuth struct {
	Session *nts.ClientSession
}

// Authenticated is true.
func (NTSAuth) Authenticated() bool { return true }

// Request builds an NTS request, or returns ErrNeedKey when no cookie is left.
func (a NTSAuth) Request(dst []byte, ts ntp.RequestStamps, poll int8, rand io.Reader) ([]byte, []byte, error) {
	if a.Session.Cookies() == 0 {
		return nil, nil, ErrNeedKey
	}
	uid := make([]byte, uidLen)
	if _, err := io.ReadFull(rand, uid); err != nil {
		return nil, nil, err
	}
	a.Session.Poll = poll
	pkt, err := a.Session.BuildRequestStamps(dst, ts, uid, rand)
	if errors.Is(err, nts.ErrNoCookies) {
		return nil, nil, ErrNeedKey
	}
	return pkt, uid, err
}

// Check authenticates the reply and takes its cookies into the jar.
func (a NTSAuth) Check(reply, uid []byte) AuthVerdict {
	switch _, err := a.Session.ProcessReply(reply, uid); {
	case err == nil:
		return AuthOK
	case errors.Is(err, nts.ErrNTSNAK):
		return AuthNAK
	}
	return AuthFailed
}
