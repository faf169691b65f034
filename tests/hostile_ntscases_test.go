package tests

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/nts"
)

// foreignCookie seals the session's keys under a key ring the daemon does
// not have; withOurID gives it the key ID of the daemon's cookie, so that
// it fails in the AEAD rather than in the key lookup.
func foreignCookie(t *testing.T, k *ntsKeys, withOurID bool) []byte {
	t.Helper()
	ring, err := nts.NewKeyRing(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := nts.Cookie{AEAD: 15}
	copy(c.C2S[:], k.keys.C2S)
	copy(c.S2C[:], k.keys.S2C)
	out, err := ring.SealCookie(nil, c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if withOurID {
		copy(out[:4], k.keys.Cookies[0][:4])
	}
	return out
}

// ntsCases break every NTS field in turn (RFC 8915 §5): a cookie that does
// not open earns an NTS NAK echoing the UID; everything else that is wrong
// earns silence; a valid request earns time authenticated under S2C.
func ntsCases(t *testing.T, h *hostile) []udpCase {
	k := h.ntsKE(t, srcGood)
	u := randomBytes(32)
	ok := validNTS(u, k.keys.Cookies[0])
	var cs []udpCase
	for i, x := range ntsTable(t, k, u) {
		req := k.build(6000+i, x.parts)
		uc := udpCase{name: "NTS " + x.name, req: req, want: x.want}
		switch x.want {
		case timeReply:
			uc.check = k.checkNTSReply(x.parts.uid, 1+x.parts.holders)
		case nakReply:
			uc.check = checkNAK(x.parts.uid)
		}
		cs = append(cs, uc)
	}
	return append(cs,
		// The server keeps no state per cookie (RFC 8915 §6): a replayed
		// request is answered again, and only its UID lets the client
		// discard the copy.
		udpCase{name: "NTS replayed request", req: cs[0].req, want: timeReply, check: cs[0].check},
		udpCase{name: "NTS from a require-auth source: time", src: srcAuthOnly, req: k.build(6100, ok(ntsParts{})), want: timeReply, check: k.checkNTSReply(u, 1)},
		udpCase{name: "NTS from an ignored source: silence", src: srcIgnored, req: k.build(6101, ok(ntsParts{}))},
		// 1000 placeholders make a 20 kB datagram: longer than any NTP
		// packet timegate parses (ntp.MaxPacketLen), so not even read.
		udpCase{name: "NTS with 1000 placeholders", req: k.build(6102, ok(ntsParts{holders: 1000, holderLen: 16}))},
	)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// validNTS completes parts into a valid request (UID u, cookie ck) where
// they leave a field out, so that a case names only what it breaks.
func validNTS(u, ck []byte) func(ntsParts) ntsParts {
	return func(p ntsParts) ntsParts {
		if p.uid == nil {
			p.uid = u
		}
		if p.cookies == nil {
			p.cookies = [][]byte{ck}
		}
		return p
	}
}

type ntsCase struct {
	name  string
	parts ntsParts
	want  outcomeKind
}

// ntsTable: each NTS field broken in turn; the first case is valid.
func ntsTable(t *testing.T, k *ntsKeys, u []byte) []ntsCase {
	ck := k.keys.Cookies[0]
	ok := validNTS(u, ck)
	uid := randomBytes
	flipped := bytes.Clone(ck)
	flipped[len(flipped)/2] ^= 1
	forged := uid(len(ck))
	copy(forged[:4], ck[:4])
	return []ntsCase{
		{"valid, no placeholder", ok(ntsParts{}), timeReply},
		{"valid, 7 placeholders", ok(ntsParts{holders: 7}), timeReply},
		{"no UID", ntsParts{cookies: [][]byte{ck}}, noReply},
		{"UID of 31 octets", ok(ntsParts{uid: uid(31)}), noReply},
		{"UID of 300 octets", ok(ntsParts{uid: uid(300)}), noReply},
		{"no cookie", ntsParts{uid: u}, noReply},
		{"two cookies", ok(ntsParts{cookies: [][]byte{ck, k.keys.Cookies[1]}}), noReply},
		{"cookie with a flipped bit", ok(ntsParts{cookies: [][]byte{flipped}}), nakReply},
		{"forged cookie (our key ID, random rest)", ok(ntsParts{cookies: [][]byte{forged}}), nakReply},
		{"foreign cookie (another server's ring)", ok(ntsParts{cookies: [][]byte{foreignCookie(t, k, false)}}), nakReply},
		{"foreign cookie with our key ID", ok(ntsParts{cookies: [][]byte{foreignCookie(t, k, true)}}), nakReply},
		{"truncated cookie", ok(ntsParts{cookies: [][]byte{ck[:len(ck)-8]}}), nakReply},
		{"empty cookie", ok(ntsParts{cookies: [][]byte{{}}}), noReply},
		{"placeholder shorter than the cookie", ok(ntsParts{holders: 1, holderLen: len(ck) - 4}), noReply},
		{"placeholder longer than the cookie", ok(ntsParts{holders: 1, holderLen: len(ck) + 4}), noReply},
		{"8 placeholders", ok(ntsParts{holders: 8}), noReply},
		{"placeholders with content", ok(ntsParts{holders: 2, holderFill: 0xee}), timeReply},
		{"no Authenticator", ok(ntsParts{noAuth: true}), noReply},
		{"nonce of 0 octets", ok(ntsParts{nonce: []byte{}}), noReply},
		{"nonce of 8 octets", ok(ntsParts{nonce: uid(8)}), noReply},
		{"nonce length past the field", ok(ntsParts{nonceLenFix: 400}), noReply},
		{"nonce length 0xffff", ok(ntsParts{nonceLenFix: 0xffff}), noReply},
		{"ciphertext length 15 (shorter than a tag)", ok(ntsParts{ctLenFix: 15}), noReply},
		{"ciphertext length past the field", ok(ntsParts{ctLenFix: 400}), noReply},
		{"bad tag", ok(ntsParts{ctFlip: true}), noReply},
		{"non-zero nonce padding", ok(ntsParts{nonce: uid(14), padJunk: true}), noReply},
		{"non-zero additional padding", ok(ntsParts{extraPad: []byte{0, 0, 0, 1}}), noReply},
		{"sealed under S2C instead of C2S", ok(ntsParts{key: k.s2c}), noReply},
		{"transmit changed after sealing", ok(ntsParts{txFlip: true}), noReply},
		{"unknown field after the Authenticator", ok(ntsParts{after: field(0x2005, 28, make([]byte, 24))}), noReply},
		{"UID after the Authenticator", ok(ntsParts{after: ntp.AppendExtField(nil, ntp.EFUniqueIdentifier, u)}), noReply},
		{"second Authenticator after the first", ok(ntsParts{after: field(ntp.EFAuthenticator, 40, make([]byte, 36))}), noReply},
		{"MAC trailer after the Authenticator", ok(ntsParts{after: make([]byte, 20)}), noReply},
		{"NTS fields in NTPv3", ok(ntsParts{vn: 3}), noReply},
	}
}
