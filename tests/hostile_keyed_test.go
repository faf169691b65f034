package tests

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"timegate/ntp"
	"timegate/symkey"
	"timegate/tests/harness"
)

// macKey is a harness key as the symkey package computes it.
func macKey(t *testing.T, k harness.Key, typ symkey.Type) *symkey.Key {
	key, err := symkey.NewKey(k.ID, typ, k.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// signed appends key ID id and digest to req.
func signed(req []byte, id uint32, digest []byte) []byte {
	out := binary.BigEndian.AppendUint32(req, id)
	return append(out, digest...)
}

// keyedCases are the attacks on RFC 8573 keyed requests. Key 1 is AES-128
// CMAC and key 2 MD5; a request must carry the right digest of the right
// length for its key ID or get nothing (no crypto-NAK: it would be
// unauthenticated and tell an attacker only that it failed).
func keyedCases(t *testing.T, h *hostile) []udpCase {
	aes := macKey(t, h.aesKey, symkey.AES128CMAC)
	md := macKey(t, h.md5Key, symkey.MD5)
	cmac := func(req []byte) []byte { return aes.Sum(nil, req) }
	md5of := func(secret, req []byte) []byte { s := md5.Sum(cat(secret, req)); return s[:] }
	sha1of := func(secret, req []byte) []byte { s := sha1.Sum(cat(secret, req)); return s[:] }
	r := func(i int) []byte { return request(5000+i, 4, 3) }
	flip := func(b []byte) []byte { b = append([]byte(nil), b...); b[len(b)-1] ^= 1; return b }
	changed := func(i int) []byte { q := signed(r(i), 1, cmac(r(i))); q[41] ^= 0x80; return q }
	v3 := request(5099, 3, 3)
	return []udpCase{
		{name: "AES-CMAC key 1: authenticated time", req: signed(r(0), 1, cmac(r(0))), want: timeReply, check: replyMAC(aes)},
		{name: "MD5 key 2: authenticated time", req: signed(r(1), 2, md5of(h.md5Key.Secret, r(1))), want: timeReply, check: replyMAC(md)},
		{name: "NTPv3, AES-CMAC key 1", req: signed(v3, 1, cmac(v3)), want: timeReply, check: replyMAC(aes)},
		{name: "bad MAC (last bit flipped)", req: signed(r(2), 1, flip(cmac(r(2))))},
		{name: "MAC over other bytes (transmit changed after signing)", req: changed(3)},
		{name: "truncated MAC: 12 of 16 octets", req: signed(r(4), 1, cmac(r(4))[:12])},
		{name: "truncated MAC: 8 of 16 octets", req: signed(r(5), 1, cmac(r(5))[:8])},
		{name: "downgrade: MD5 digest under AES key 1", req: signed(r(6), 1, md5of(h.aesKey.Secret, r(6)))},
		{name: "downgrade: SHA1 digest under AES key 1", req: signed(r(7), 1, sha1of(h.aesKey.Secret, r(7)))},
		{name: "AES-CMAC digest under MD5 key 2", req: signed(r(8), 2, cmac(r(8)))},
		{name: "key ID 0 with key 1's digest", req: signed(r(9), 0, cmac(r(9)))},
		{name: "unknown key ID 99", req: signed(r(10), 99, cmac(r(10)))},
		{name: "key ID 0xffffffff", req: signed(r(11), 0xffffffff, cmac(r(11)))},
		{name: "24-octet digest", req: signed(r(12), 1, append(cmac(r(12)), make([]byte, 8)...))},
		{name: "all-zero digest", req: signed(r(13), 1, make([]byte, 16))},
		{name: "crypto-NAK trailer", req: signed(r(14), 0, nil)},
		{name: "require-auth source, valid MAC: time", src: srcAuthOnly, req: signed(r(15), 1, cmac(r(15))), want: timeReply, check: replyMAC(aes)},
		{name: "require-auth source, bad MAC: nothing (no kiss to forge)", src: srcAuthOnly, req: signed(r(16), 1, flip(cmac(r(16))))},
		{name: "noserve source, valid MAC: DENY", src: srcDeny, req: signed(r(17), 1, cmac(r(17))), want: kissReply, kiss: ntp.KissDENY},
		{name: "ignored source, valid MAC: silence", src: srcIgnored, req: signed(r(18), 1, cmac(r(18)))},
	}
}

// replyMAC checks that a reply carries a valid digest under key.
func replyMAC(key *symkey.Key) func([]byte) error {
	return func(reply []byte) error {
		n := len(reply) - 4 - key.Size()
		if n != ntp.HeaderLen {
			return fmt.Errorf("reply of %d octets, want a header and a %d-octet MAC", len(reply), key.Size())
		}
		if id := binary.BigEndian.Uint32(reply[n:]); id != key.ID() {
			return fmt.Errorf("reply under key %d, want %d", id, key.ID())
		}
		if !key.Verify(reply[:n], reply[n+4:]) {
			return errors.New("reply MAC does not verify")
		}
		return nil
	}
}
