package main

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"timegate/ntp"
)

func TestBuildRequestMatchesNTPPackage(t *testing.T) {
	b := make([]byte, 64)
	for i := range b {
		b[i] = 0xaa // BuildRequest must clear what it does not set
	}
	const nonce = 0x0123456789abcdef
	BuildRequest(b, nonce)
	want := ntp.ClientRequest(nil, 4, requestPoll, ntp.Time64(nonce))
	if !bytes.Equal(b[:ntpLen], want) {
		t.Fatalf("request\n got %x\nwant %x", b[:ntpLen], want)
	}
	h, err := ntp.DecodeHeader(b[:ntpLen])
	if err != nil || h.Mode != ntp.ModeClient || h.Version != 4 || uint64(h.Transmit) != nonce {
		t.Fatalf("decoded %+v, %v", h, err)
	}
	putTransmit(b, 42)
	if got := binary.BigEndian.Uint64(b[offTransmit:]); got != 42 {
		t.Fatalf("putTransmit: transmit = %d", got)
	}
}

func TestParseReply(t *testing.T) {
	reply := func(byte0, stratum byte, origin uint64) []byte {
		b := make([]byte, ntpLen)
		b[0], b[offStratum] = byte0, stratum
		binary.BigEndian.PutUint64(b[offOrigin:], origin)
		return b
	}
	tests := []struct {
		name   string
		b      []byte
		kind   ReplyKind
		origin uint64
	}{
		{"v4 server", reply(4<<3|4, 2, 7), ReplyTime, 7},
		{"v3 server", reply(3<<3|4, 2, 7), ReplyTime, 7},
		{"unsynchronised", reply(3<<6|4<<3|4, 16, 9), ReplyTime, 9},
		{"kiss", reply(3<<6|4<<3|4, 0, 9), ReplyKoD, 9},
		{"with extension", append(reply(4<<3|4, 2, 5), make([]byte, 16)...), ReplyTime, 5},
		{"short", reply(4<<3|4, 2, 7)[:47], ReplyBad, 0},
		{"client mode", reply(4<<3|3, 2, 7), ReplyBad, 0},
		{"broadcast mode", reply(4<<3|5, 2, 7), ReplyBad, 0},
		{"version 2", reply(2<<3|4, 2, 7), ReplyBad, 0},
		{"version 5", reply(5<<3|4, 2, 7), ReplyBad, 0},
	}
	for _, tt := range tests {
		kind, origin := ParseReply(tt.b)
		if kind != tt.kind || origin != tt.origin {
			t.Errorf("%s: got (%d, %d), want (%d, %d)", tt.name, kind, origin, tt.kind, tt.origin)
		}
	}
	// A real reply from the ntp package's responder echoes our nonce.
	st := &ntp.ServedState{Stratum: 2, RefID: 1}
	r := &ntp.Responder{State: func() *ntp.ServedState { return st }}
	req := make([]byte, ntpLen)
	BuildRequest(req, 0xfeedface12345678)
	out, v := r.Respond(make([]byte, 0, 128), req, mustAddrPort(t, "127.0.0.2:40000"), nowForTest())
	if v.Action != ntp.ActionReply {
		t.Fatalf("verdict %+v", v)
	}
	if kind, origin := ParseReply(out); kind != ReplyTime || origin != 0xfeedface12345678 {
		t.Fatalf("responder reply parsed as (%d, %#x)", kind, origin)
	}
}

// TestResidence: transmit minus receive timestamp in NTP 32.32 seconds,
// nothing without both, zero for a negative difference.
func TestResidence(t *testing.T) {
	b := make([]byte, ntpLen)
	if _, ok := Residence(b); ok {
		t.Fatal("a reply without timestamps has a residence")
	}
	rx := uint64(3_900_000_000) << 32
	binary.BigEndian.PutUint64(b[offReceive:], rx)
	binary.BigEndian.PutUint64(b[offTransmit:], rx+1<<31) // + 0.5 s
	if d, ok := Residence(b); !ok || d != 500*time.Millisecond {
		t.Fatalf("residence %v, %v; want 500ms", d, ok)
	}
	binary.BigEndian.PutUint64(b[offTransmit:], rx+4295) // ≈ 1 µs
	if d, _ := Residence(b); d < 999*time.Nanosecond || d > 1001*time.Nanosecond {
		t.Fatalf("residence %v, want about 1µs", d)
	}
	binary.BigEndian.PutUint64(b[offTransmit:], rx-1<<32)
	if d, ok := Residence(b); !ok || d != 0 {
		t.Fatalf("negative residence gave %v, %v", d, ok)
	}
	if _, ok := Residence(b[:ntpLen-1]); ok {
		t.Fatal("a short reply has a residence")
	}
}
