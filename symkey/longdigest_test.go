package symkey

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/upstream"
)

// A key whose digest is longer than 20 octets works as chrony uses it: an
// NTPv3 request carries the whole digest (SHA256: 48 + 4 + 32 = 84 octets)
// and is answered with an NTPv3 reply of the same length; an NTPv4 request
// carries the 20-octet truncation and gets the same back. The client side
// (upstream.KeyAuth with the version the engine picks) produces exactly
// these requests and accepts exactly these replies.
func TestLongDigestRoundTrip(t *testing.T) {
	for _, typ := range []Type{SHA224, SHA256, SHA384, SHA512, SHA3_224, SHA3_256, SHA3_384, SHA3_512} {
		for _, vn := range []uint8{3, 4} {
			t.Run(fmt.Sprintf("%v/v%d", typ, vn), func(t *testing.T) {
				k := mustKey(t, 42, typ, []byte("a secret of twenty bytes"))
				auth := upstream.KeyAuth{ID: 42, Key: k, Version: vn}
				req, _, err := auth.Request(nil, ntp.RequestStamps{Transmit: 0x1234567890abcdef}, 6, nil)
				if err != nil {
					t.Fatal(err)
				}
				wantLen := ntp.HeaderLen + 4 + typ.MACLen(vn)
				if len(req) != wantLen || req[0]>>3&7 != vn {
					t.Fatalf("request is %d octets v%d, want %d v%d", len(req), req[0]>>3&7, wantLen, vn)
				}
				r := goldenResponder(k)
				reply, v := r.Respond(make([]byte, 0, len(req)), req, goldenClient, nowForTest)
				if reply == nil {
					t.Fatalf("no reply: %+v", v)
				}
				if len(reply) != len(req) || reply[0]>>3&7 != vn {
					t.Fatalf("reply is %d octets v%d, want %d v%d", len(reply), reply[0]>>3&7, len(req), vn)
				}
				if auth.Check(reply, nil) != upstream.AuthOK {
					t.Fatal("client rejects the reply")
				}
				bad := bytes.Clone(reply)
				bad[len(bad)-1] ^= 1
				if auth.Check(bad, nil) == upstream.AuthOK {
					t.Fatal("client accepts a reply with a flipped MAC bit")
				}
			})
		}
	}
}

// An NTPv4 request carrying a whole long digest is not a packet (RFC 7822:
// the trailer is neither a MAC nor an extension field), and an NTPv3
// request carrying only the truncation is refused: each version has exactly
// one digest length.
func TestLongDigestWrongLength(t *testing.T) {
	k := mustKey(t, 42, SHA256, []byte("a secret of twenty bytes"))
	r := goldenResponder(k)
	for _, tc := range []struct {
		vn uint8
		n  int
	}{{4, 32}, {3, 20}} {
		req := ntp.ClientRequest(nil, tc.vn, 6, 0x1234567890abcdef)
		req = append(req, 0, 0, 0, 42)
		req = k.SumTrunc(req, req[:ntp.HeaderLen], tc.n)
		if reply, v := r.Respond(make([]byte, 0, len(req)), req, goldenClient, nowForTest); reply != nil {
			t.Errorf("v%d with a %d-octet digest answered: %+v", tc.vn, tc.n, v)
		}
	}
}

var nowForTest = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
