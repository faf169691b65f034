package ntp

import (
	"encoding/binary"
	"testing"

	"timegate/symkey"
)

// fuzzKeys are the keys the keyed fuzz target's responder has: one of each
// type whose digest fits NTPv4 whole, with IDs 1 to 4.
func fuzzKeys(t testing.TB) map[uint32]*symkey.Key {
	keys := map[uint32]*symkey.Key{}
	for i, typ := range []symkey.Type{symkey.AES128CMAC, symkey.MD5, symkey.SHA1, symkey.AES256CMAC} {
		n := typ.KeySize() // the cipher key for CMAC; 0 for hashes, which take 20 (RFC 8573 §4)
		if n == 0 {
			n = 20
		}
		secret := make([]byte, n)
		for j := range secret {
			secret[j] = byte(17*i + j)
		}
		k, err := symkey.NewKey(uint32(i+1), typ, secret)
		if err != nil {
			t.Fatal(err)
		}
		keys[k.ID()] = k
	}
	return keys
}

// FuzzRespondKeyed drives Respond with symmetric keys configured. The
// fuzzer picks the packet, the key ID the trailer names, the key that
// actually signs it (0: no trailer is added; the packet may carry its own)
// and a bit to flip after signing. Properties: no reply is longer than its
// request; an authenticated reply comes only to a request whose MAC
// verifies under the key its ID names (checked here independently of the
// responder), and carries that key ID and a MAC that verifies under that
// key; any other reply carries no MAC at all.
func FuzzRespondKeyed(f *testing.F) {
	req := clientRequest(4)
	for id := uint32(0); id <= 5; id++ {
		f.Add(req, id, uint8(id), uint16(0))
		f.Add(req, id, uint8(id%4+1), uint16(0))  // a wrong key
		f.Add(req, id, uint8(id), uint16(1+8*47)) // transmit changed after signing
		f.Add(clientRequest(3), id, uint8(id), uint16(0))
	}
	f.Add(append(clientRequest(4), make([]byte, 20)...), uint32(0), uint8(0), uint16(0))
	f.Add(AppendExtField(clientRequest(4), 0x2005, make([]byte, 24)), uint32(1), uint8(1), uint16(0))
	keys := fuzzKeys(f)
	r := testResponder()
	r.Keys = func(id uint32) (MACKey, bool) { k, ok := keys[id]; return k, ok }
	f.Fuzz(func(t *testing.T, data []byte, id uint32, signer uint8, flip uint16) {
		req := append([]byte(nil), data...)
		if k, ok := keys[uint32(signer)]; ok {
			req = binary.BigEndian.AppendUint32(req, id)
			req = k.Sum(req, req[:len(req)-4])
		}
		if flip != 0 && len(req) > 0 {
			bit := int(flip-1) % (8 * len(req))
			req[bit/8] ^= 1 << (bit % 8)
		}
		reply, v := r.Respond(make([]byte, 0, 2048), req, testClient, testRx)
		checkKeyedReply(t, keys, req, reply, v)
	})
}

func checkKeyedReply(t *testing.T, keys map[uint32]*symkey.Key, req, reply []byte, v Verdict) {
	if len(reply) > len(req) {
		t.Fatalf("reply of %d octets to a request of %d", len(reply), len(req))
	}
	if reply == nil {
		return
	}
	if v.Auth != AuthKey {
		if len(reply) != HeaderLen {
			t.Fatalf("unauthenticated reply of %d octets: only a bare header may go out", len(reply))
		}
		return
	}
	p, err := Parse(req)
	if err != nil || len(p.MAC) <= keyIDLen {
		t.Fatalf("authenticated reply to a request without a MAC trailer (%v)", err)
	}
	id := binary.BigEndian.Uint32(p.MAC)
	k, ok := keys[id]
	if !ok || !k.Verify(req[:len(req)-len(p.MAC)], p.MAC[keyIDLen:]) {
		t.Fatalf("authenticated reply to a request whose MAC does not verify under key %d", id)
	}
	n := len(reply) - keyIDLen - len(p.MAC[keyIDLen:])
	if n != HeaderLen || binary.BigEndian.Uint32(reply[n:]) != id || !k.Verify(reply[:n], reply[n+keyIDLen:]) {
		t.Fatalf("reply MAC does not verify under key %d", id)
	}
}
