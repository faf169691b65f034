package nts

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

func FuzzRecords(f *testing.F) {
	ring := testRing(f, 1)
	var ex fakeExporter
	good, _ := Negotiate(goodRequest(), ex.export, ring, seeded(2), NegotiateOptions{NTPServer: "ntp.example", NTPPort: 1123})
	for _, recs := range [][]Record{
		goodRequest(),
		good,
		{NextProtocolRecord(0, 1), AEADRecord(30, 15), ServerRecord("192.0.2.1"), PortRecord(123), EndOfMessage()},
		{NextProtocolRecord(0), {Type: 0x4000, Critical: true}, AEADRecord(15), EndOfMessage()},
		{NextProtocolRecord(0), {Type: 0x4000, Body: []byte("x")}, AEADRecord(15), EndOfMessage()},
		{NextProtocolRecord(0), AEADRecord(15), CookieRecord([]byte{1, 2, 3, 4}), EndOfMessage()},
		{NextProtocolRecord(2), EndOfMessage()},
		ErrorResponse(CodeBadRequest),
	} {
		f.Add(mustMessage(f, recs...))
	}
	f.Add([]byte{0x80, 1, 0, 2, 0, 0, 0x80, 4, 0, 2, 0, 15, 0x80, 0, 0, 0, 0})
	f.Add([]byte{0x80, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseRequest(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error %v does not wrap ErrMalformed", err)
			}
		} else {
			checkReencode(t, data, recs)
			checkNegotiate(t, recs, ring)
		}
		if recs, err := ParseResponse(data); err == nil {
			checkReencode(t, data, recs)
			if p, err := readResponse(recs, []uint16{15}); len(p.cookies) > MaxCookies || (err == nil && p.aead != 15) {
				t.Fatalf("readResponse accepted %d cookies, AEAD %d", len(p.cookies), p.aead)
			}
		}
	})
}

// checkReencode: parse → encode gives back the exact bytes, and parsing those
// gives the same records.
func checkReencode(t *testing.T, data []byte, recs []Record) {
	enc, err := AppendMessage(nil, recs)
	if err != nil || !bytes.Equal(enc, data) {
		t.Fatalf("re-encoding gives % x (%v), want % x", enc, err, data)
	}
	again, err := ParseResponse(enc)
	if err != nil || len(again) != len(recs) {
		t.Fatalf("reparse: %d records, %v", len(again), err)
	}
	for i := range recs {
		if again[i].Type != recs[i].Type || again[i].Critical != recs[i].Critical || !bytes.Equal(again[i].Body, recs[i].Body) {
			t.Fatalf("record %d changed across a round trip", i)
		}
	}
}

// checkNegotiate: never more than 8 cookies; keys only with a nil error;
// every error is either a refusal with no keys or an Error record response
// whose code matches the ProtocolError.
func checkNegotiate(t *testing.T, recs []Record, ring *KeyRing) {
	var ex fakeExporter
	resp, err := Negotiate(recs, ex.export, ring, seeded(3), NegotiateOptions{})
	n := countCookies(resp)
	var pe *ProtocolError
	switch {
	case err == nil:
		if n != MaxCookies || len(ex.contexts) != 2 {
			t.Fatalf("granted with %d cookies, %d exports", n, len(ex.contexts))
		}
		for _, r := range resp {
			if r.Type == RecNewCookie {
				if _, err := ring.OpenCookie(r.Body); err != nil {
					t.Fatalf("issued cookie does not open: %v", err)
				}
			}
		}
	case errors.As(err, &pe):
		want := ErrorResponse(pe.Code)
		if pe.Code > CodeBadRequest || len(resp) != 2 || !bytes.Equal(resp[0].Body, want[0].Body) || n != 0 || len(ex.contexts) != 0 {
			t.Fatalf("refusal %v: response %+v, %d exports", err, resp, len(ex.contexts))
		}
	case errors.Is(err, ErrNoCommonProtocol), errors.Is(err, ErrNoCommonAEAD):
		if n != 0 || len(ex.contexts) != 0 || resp[len(resp)-1].Type != RecEndOfMessage {
			t.Fatalf("%v with %d cookies", err, n)
		}
	default:
		t.Fatalf("unexpected error %v", err)
	}
	if _, err := AppendMessage(nil, resp); err != nil {
		t.Fatalf("response does not encode: %v", err)
	}
}

func FuzzUnmarshalKeyRing(f *testing.F) {
	ring := testRing(f, 1)
	rot, _ := ring.Rotated(testEpoch, seeded(2), 3)
	for _, r := range []*KeyRing{ring, rot} {
		data, _ := r.MarshalBinary()
		f.Add(data, false)
		f.Add(data[:len(data)-ringSumLen], true)
	}
	f.Add([]byte("TGKR\x01\x02\x00\x00"), true)
	f.Fuzz(func(t *testing.T, data []byte, fixSum bool) {
		if fixSum { // let the fuzzer past the checksum to reach the parser
			data = appendSum(data)
		}
		r, err := UnmarshalKeyRing(data)
		if err != nil {
			if !errors.Is(err, ErrKeyRing) {
				t.Fatalf("error %v does not wrap ErrKeyRing", err)
			}
			return
		}
		again, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatal("marshal(unmarshal(x)) != x")
		}
		ids := r.IDs()
		if len(ids) < 2 || len(ids) > 1+MaxKeep {
			t.Fatalf("%d keys", len(ids))
		}
		ck, err := r.SealCookie(nil, testCookie(1), seeded(4))
		if err != nil {
			t.Fatal(err)
		}
		if c, err := r.OpenCookie(ck); err != nil || c != testCookie(1) {
			t.Fatalf("loaded ring cannot open its own cookie: %v", err)
		}
	})
}

func appendSum(b []byte) []byte {
	sum := sha256Sum(b)
	return append(append([]byte(nil), b...), sum[:]...)
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
