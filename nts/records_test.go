package nts

import (
	"bytes"
	"errors"
	"testing"
)

func TestAppendParseRoundTrip(t *testing.T) {
	recs := []Record{
		NextProtocolRecord(0, 0x8001),
		AEADRecord(30, 15),
		ServerRecord("ntp.example.com"),
		PortRecord(4123),
		{Type: 0x4000, Body: []byte{1, 2, 3}},
		CookieRecord(bytes.Repeat([]byte{7}, 104)),
		WarningRecord(9),
		ErrorRecord(CodeBadRequest),
		EndOfMessage(),
	}
	msg := mustMessage(t, recs...)
	got, err := ParseResponse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("got %d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if got[i].Type != recs[i].Type || got[i].Critical != recs[i].Critical || !bytes.Equal(got[i].Body, recs[i].Body) {
			t.Errorf("record %d: got %+v, want %+v", i, got[i], recs[i])
		}
	}
	// The wire form of the End of Message record is fixed by RFC 8915 §4.1.1.
	if tail := msg[len(msg)-4:]; !bytes.Equal(tail, []byte{0x80, 0, 0, 0}) {
		t.Errorf("EOM wire form % x", tail)
	}
}

func TestParseFraming(t *testing.T) {
	eom := []byte{0x80, 0, 0, 0}
	np := []byte{0x80, 1, 0, 2, 0, 0}
	many := bytes.Repeat([]byte{0x40, 0, 0, 0}, MaxRequestRecords)
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrNoEndOfMessage},
		{"no EOM", np, ErrNoEndOfMessage},
		{"short header", append(np, 0x80), ErrTruncated},
		{"short body", []byte{0x80, 1, 0, 4, 0, 0}, ErrTruncated},
		{"after EOM", append(append(append([]byte{}, np...), eom...), 0), ErrDataAfterEnd},
		{"too many records", append(append([]byte{}, many...), eom...), ErrTooManyRecords},
		{"too large", append(make([]byte, MaxRequestSize), eom...), ErrMessageTooLarge},
	}
	for _, tt := range tests {
		_, err := ParseRequest(tt.msg)
		if !errors.Is(err, tt.want) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want %v wrapping ErrMalformed", tt.name, err, tt.want)
		}
	}
	if _, err := ParseRequest(append(append([]byte{}, np...), eom...)); err != nil {
		t.Errorf("minimal message: %v", err)
	}
}

func TestMessageLen(t *testing.T) {
	msg := mustMessage(t, goodRequest()...)
	for i := range len(msg) {
		if n := messageLen(msg[:i]); n != 0 {
			t.Fatalf("prefix %d: messageLen = %d, want 0", i, n)
		}
	}
	if n := messageLen(append(msg, 1, 2, 3)); n != len(msg) {
		t.Fatalf("messageLen = %d, want %d", n, len(msg))
	}
}

func TestAppendMessageRejectsBadType(t *testing.T) {
	if _, err := AppendMessage(nil, []Record{{Type: 0x8000}}); !errors.Is(err, ErrRecordType) {
		t.Errorf("err = %v", err)
	}
	if _, err := AppendMessage(nil, []Record{{Type: 5, Body: make([]byte, 70000)}}); err == nil {
		t.Error("70000-byte body encoded")
	}
}

func TestValidServerName(t *testing.T) {
	good := []string{"ntp.example.com", "ntp.example.com.", "192.0.2.1", "2001:db8::1",
		"::ffff:192.0.2.1", "xn--bcher-kva.example", "a", "a-b.c0"}
	bad := []string{"", "-a.example", "a-.example", "a..b", ".", "fe80::1%eth0",
		"b\u00fccher.example", "a_b.example", "1.2.3", "192.0.2.256", "01.2.3.4",
		string(bytes.Repeat([]byte("a"), 64)) + ".example", "host name"}
	for _, s := range good {
		if !validServerName([]byte(s)) {
			t.Errorf("%q rejected", s)
		}
	}
	for _, s := range bad {
		if validServerName([]byte(s)) {
			t.Errorf("%q accepted", s)
		}
	}
	long := bytes.Repeat([]byte("abcdefg."), 32) // 256 bytes
	if validServerName(long) {
		t.Error("256-byte name accepted")
	}
}
