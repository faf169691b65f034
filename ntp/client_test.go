package ntp

import (
	"errors"
	"testing"
	"time"
)

func TestClientExchangeAgainstResponder(t *testing.T) {
	r := testResponder() // serves system time + 250µs, answers at testTx
	nonce := Time64(0x0123456789abcdef)
	req := ClientRequest(nil, 4, 6, nonce)
	t1 := testRx.Add(-100 * time.Microsecond)
	reply, v := r.Respond(make([]byte, 0, 48), req, testClient, testRx)
	if v.Action != ActionReply {
		t.Fatalf("verdict %+v", v)
	}
	t4 := testTx.Add(100 * time.Microsecond)
	s, err := CheckReply(reply, 4, nonce, t1, t4)
	if err != nil {
		t.Fatal(err)
	}
	if s.Offset.Round(time.Microsecond) != 250*time.Microsecond || s.Delay.Round(time.Microsecond) != 200*time.Microsecond {
		t.Errorf("offset %v delay %v, want 250µs 200µs", s.Offset, s.Delay)
	}
	if d := s.RootDistance(); d < 5*time.Millisecond || d > 7*time.Millisecond {
		t.Errorf("root distance %v", d)
	}
	if _, err := CheckReply(reply, 4, nonce+1, t1, t4); !errors.Is(err, ErrBogusOrigin) {
		t.Errorf("wrong origin: %v", err)
	}
	if _, err := CheckReply(reply, 3, nonce, t1, t4); !errors.Is(err, ErrBadVersion) {
		t.Errorf("wrong version: %v", err)
	}
	kod := KissHeader(&Header{Version: 4, Transmit: nonce}, KissDENY)
	s, err = CheckReply(kod.Append(nil), 4, nonce, t1, t4)
	if !errors.Is(err, ErrKiss) || KissCode(s.Header.RefID) != KissDENY {
		t.Errorf("kiss: %v %v", err, s.Header)
	}
	bad := append([]byte{}, reply...)
	bad[0] = bad[0]&^7 | 3
	if _, err := CheckReply(bad, 4, nonce, t1, t4); !errors.Is(err, ErrNotServer) {
		t.Errorf("mode 3 reply: %v", err)
	}
	unsync := Unsynchronised(-20)
	r.State = func() *ServedState { return unsync }
	reply, _ = r.Respond(make([]byte, 0, 48), req, testClient, testRx)
	if _, err := CheckReply(reply, 4, nonce, t1, t4); !errors.Is(err, ErrBadStratum) {
		t.Errorf("stratum 16: %v", err)
	}
}
