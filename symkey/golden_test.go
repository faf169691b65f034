package symkey

import (
	"bytes"
	"net/netip"
	"os"
	"testing"
	"time"

	"timegate/ntp"
)

// Golden captures of chronyd 4.3 (Debian bookworm) as a client with
// `server 127.0.0.1 ... key 1` and the AES128 key in
// testdata/chrony-4.3-aes128.keys; see testdata/README.md for how they were
// made (tests/capture, build tag capture). They are replayed here through
// ntp.Responder without chrony installed.

const goldenDigestLen = 16 // AES-CMAC (RFC 8573 §4)

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenKey loads key 1 from the keys file chronyd used.
func goldenKey(t *testing.T) *Key {
	t.Helper()
	set, warnings, err := Parse("chrony-4.3-aes128.keys", readGolden(t, "chrony-4.3-aes128.keys"))
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Parse: %v, warnings %q", err, warnings)
	}
	k, ok := set.Lookup(1)
	if !ok || k.Type() != AES128CMAC || set.Len() != 1 {
		t.Fatalf("key 1: %v, %d keys; want one AES128 key", k, set.Len())
	}
	return k
}

func goldenResponder(k *Key) *ntp.Responder {
	st := &ntp.ServedState{Stratum: 4, RefID: 0x7f7f0101, Precision: -20}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &ntp.Responder{
		State: func() *ntp.ServedState { return st },
		Now:   func() time.Time { return now },
		Keys: func(id uint32) (ntp.MACKey, bool) {
			if id != k.ID() {
				return nil, false
			}
			return k, true
		},
	}
}

var goldenClient = netip.MustParseAddrPort("127.0.0.1:41123")

// chrony's AES128-CMAC request verifies with the stored key, through the
// responder as the gateway runs it; the reply is signed with the same key;
// no single-bit change of the request is answered.
func TestGoldenChronyAES128Request(t *testing.T) {
	k := goldenKey(t)
	req := readGolden(t, "chrony-4.3-aes128-request.bin")
	p, err := ntp.Parse(req)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := p.KeyID(); !ok || id != 1 || p.Header.Version != 4 || p.Header.Mode != ntp.ModeClient ||
		len(req) != ntp.HeaderLen+4+goldenDigestLen || p.NumFields != 0 {
		t.Fatalf("%d bytes, header %+v, MAC %x: want NTPv4 mode 3 with key 1 and a 16-byte CMAC", len(req), p.Header, p.MAC)
	}
	if !k.Verify(req[:len(req)-len(p.MAC)], p.Digest()) {
		t.Fatal("the CMAC chrony computed does not verify with the stored key")
	}

	r := goldenResponder(k)
	reply, v := r.Respond(make([]byte, 0, ntp.MaxPacketLen), req, goldenClient, time.Now())
	if v.Action != ntp.ActionReply || v.Reason != ntp.ReasonOK || v.Auth != ntp.AuthKey {
		t.Fatalf("verdict %+v", v)
	}
	checkSignedReply(t, k, req, reply)

	// Every single-bit change is dropped: the MAC covers the header, the key
	// ID selects the key, and the digest is checked in full.
	for bit := range len(req) * 8 {
		bad := bytes.Clone(req)
		bad[bit/8] ^= 1 << (bit % 8)
		reply, v := r.Respond(make([]byte, 0, ntp.MaxPacketLen), bad, goldenClient, time.Now())
		if reply != nil || v.Action != ntp.ActionDrop {
			t.Fatalf("bit %d flipped: verdict %+v, %d-byte reply", bit, v, len(reply))
		}
		inMAC := bit/8 >= ntp.HeaderLen+4
		if (bit/8 >= 1 && bit/8 < ntp.HeaderLen || inMAC) && v.Reason != ntp.ReasonBadMAC {
			t.Errorf("bit %d flipped: reason %v, want %v", bit, v.Reason, ntp.ReasonBadMAC)
		}
	}
}

// The reply chronyd 4.3 accepted (its ntpdata said Authenticated: Yes).
func TestGoldenChronyAES128Reply(t *testing.T) {
	k := goldenKey(t)
	checkSignedReply(t, k, readGolden(t, "chrony-4.3-aes128-request.bin"), readGolden(t, "chrony-4.3-aes128-reply.bin"))
}

// checkSignedReply checks that reply answers req and carries a valid MAC of
// key k, and that a one-bit change breaks it.
func checkSignedReply(t *testing.T, k *Key, req, reply []byte) {
	t.Helper()
	q, _ := ntp.DecodeHeader(req)
	p, err := ntp.Parse(reply)
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	if len(reply) != len(req) || p.Header.Mode != ntp.ModeServer || p.Header.Origin != q.Transmit {
		t.Fatalf("reply %d bytes (request %d), header %+v", len(reply), len(req), p.Header)
	}
	if id, ok := p.KeyID(); !ok || id != k.ID() {
		t.Fatalf("reply key ID %d, want %d", id, k.ID())
	}
	signed := reply[:len(reply)-len(p.MAC)] // RFC 8573: the MAC covers the packet before the key ID
	if !k.Verify(signed, p.Digest()) {
		t.Fatal("reply MAC does not verify")
	}
	bad := bytes.Clone(reply)
	bad[40] ^= 1 // transmit timestamp
	if k.Verify(bad[:len(signed)], bad[len(bad)-goldenDigestLen:]) {
		t.Fatal("reply MAC verifies after a one-bit change of the transmit timestamp")
	}
}
