package upstream

import (
	"testing"

	"timegate/ntp"
)

func TestReasonRefIDsRoundTrip(t *testing.T) {
	seen := map[uint32]bool{}
	for k := ReasonStarting; k <= ReasonHoldover; k++ {
		id := k.RefID()
		text, ok := ExplainRefID(id)
		if !ok || text == "" {
			t.Errorf("%v: refid %#x has no explanation", k, id)
		}
		if code := ntp.KissCode(id).String(); code == "????" {
			t.Errorf("%v: refid %#x is not printable ASCII", k, id)
		}
		seen[id] = true
	}
	if ReasonStarting.RefID() != ntp.RefIDInit {
		t.Errorf("starting must be served as INIT, like ntp.Unsynchronised")
	}
	if len(seen) < 7 {
		t.Errorf("only %d distinct codes", len(seen))
	}
	if _, ok := ExplainRefID(0x7f000001); ok {
		t.Error("an IPv4 refid was explained as a reason")
	}
}
