package ntp

import (
	"net/netip"
	"testing"
	"time"
)

func symmetricRequest(version uint8) []byte {
	h := Header{Version: version, Mode: ModeSymmetricActive, Poll: 10, Transmit: Time64From(testRx.Add(-time.Millisecond)) | 0x5678}
	return h.Append(nil)
}

// w32time's mode 1 poll: answered statelessly in mode 2 (origin = its
// transmit timestamp, no larger than the request) where the rule has no
// nopeer; refused where it has; a kiss becomes silence; NTS in mode 1 is
// refused.
func TestRespondSymmetricActive(t *testing.T) {
	r := testResponder()
	for _, vn := range []uint8{3, 4} {
		req := symmetricRequest(vn)
		reply, v := r.Respond(make([]byte, 0, len(req)), req, testClient, testRx)
		h, err := DecodeHeader(reply)
		if err != nil || v.Action != ActionReply || h.Mode != ModeSymmetricPassive || h.Version != vn ||
			h.Origin != Time64From(testRx.Add(-time.Millisecond))|0x5678 || h.Stratum != 3 || len(reply) > len(req) {
			t.Fatalf("v%d: verdict %+v header %+v err %v", vn, v, h, err)
		}
	}
	req := symmetricRequest(4)
	for _, tc := range []struct {
		name   string
		adm    Admission
		reason Reason
	}{
		{"nopeer", Admission{Action: ActionReply, NoPeer: true}, ReasonPolicy},
		{"rate kiss", Admission{Action: ActionKoD, Kiss: KissRATE, Reason: ReasonRateLimited}, ReasonRateLimited},
		{"policy drop", Admission{Action: ActionDrop, Reason: ReasonRequireAuth}, ReasonRequireAuth},
	} {
		r.Gate = gateFunc(func(netip.Addr, time.Time, AuthKind) Admission { return tc.adm })
		if reply, v := r.Respond(make([]byte, 0, 48), req, testClient, testRx); reply != nil || v.Reason != tc.reason {
			t.Errorf("%s: %d-byte reply, verdict %+v", tc.name, len(reply), v)
		}
	}
	// A mode 3 request under the same nopeer rule is served.
	r.Gate = gateFunc(func(netip.Addr, time.Time, AuthKind) Admission { return Admission{Action: ActionReply, NoPeer: true} })
	if reply, _ := r.Respond(make([]byte, 0, 48), clientRequest(4), testClient, testRx); reply == nil {
		t.Error("nopeer refused a client request")
	}
	r.Gate = nil
	nts := AppendExtField(symmetricRequest(4), EFUniqueIdentifier, make([]byte, 32))
	if reply, v := r.Respond(make([]byte, 0, len(nts)), nts, testClient, testRx); reply != nil || v.Reason != ReasonMode {
		t.Errorf("NTS in mode 1: %d-byte reply, verdict %+v", len(reply), v)
	}
}
