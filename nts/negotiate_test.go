package nts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestNegotiateGrants(t *testing.T) {
	ring := testRing(t, 1)
	var ex fakeExporter
	req := []Record{
		NextProtocolRecord(0x8001, ProtocolNTPv4),
		AEADRecord(17, AEADAESSIVCMAC256, 16),           // we support only 15 of these
		{Type: 0x4001, Body: []byte("ignored")},         // unknown, not critical
		PortRecord(999), ServerRecord("client.example"), // preferences we may ignore
		EndOfMessage(),
	}
	resp, err := Negotiate(req, ex.export, ring, seeded(2), NegotiateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// RFC 8915 §5.1: label, and context = protocol id ‖ AEAD id ‖ direction.
	wantCtx := [][]byte{{0, 0, 0, 15, 0}, {0, 0, 0, 15, 1}}
	if len(ex.contexts) != 2 || !bytes.Equal(ex.contexts[0], wantCtx[0]) || !bytes.Equal(ex.contexts[1], wantCtx[1]) {
		t.Fatalf("exporter contexts % x, want % x", ex.contexts, wantCtx)
	}
	for _, l := range ex.labels {
		if l != "EXPORTER-network-time-security" {
			t.Fatalf("exporter label %q", l)
		}
	}
	if resp[0].Type != RecNextProtocol || !bytes.Equal(resp[0].Body, []byte{0, 0}) {
		t.Errorf("first record %+v, want Next Protocol {0}", resp[0])
	}
	if resp[1].Type != RecAEAD || !bytes.Equal(resp[1].Body, []byte{0, 15}) {
		t.Errorf("second record %+v, want AEAD {15}", resp[1])
	}
	if resp[len(resp)-1].Type != RecEndOfMessage {
		t.Error("response does not end with End of Message")
	}
	checkGrantedCookies(t, resp, ring, fakeKey(wantCtx[0], 32), fakeKey(wantCtx[1], 32))
	// The response must itself be a valid response for a client.
	msg := mustMessage(t, resp...)
	recs, err := ParseResponse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readResponse(recs, []uint16{15}); err != nil {
		t.Fatal(err)
	}
}

// checkGrantedCookies: MaxCookies cookies, each opening to c2s and s2c, and
// no Server or Port record (default options).
func checkGrantedCookies(t *testing.T, resp []Record, ring *KeyRing, c2s, s2c []byte) {
	t.Helper()
	cookies := 0
	for _, r := range resp {
		switch r.Type {
		case RecServer, RecPort:
			t.Errorf("unexpected %v record with default options", r.Type)
		case RecNewCookie:
			cookies++
			c, err := ring.OpenCookie(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			if c.AEAD != 15 || !bytes.Equal(c.C2S[:], c2s) || !bytes.Equal(c.S2C[:], s2c) {
				t.Error("cookie does not hold the exported keys")
			}
		}
	}
	if cookies != MaxCookies {
		t.Errorf("%d cookies, want %d", cookies, MaxCookies)
	}
}

func TestNegotiateServerAndPort(t *testing.T) {
	ring := testRing(t, 1)
	var ex fakeExporter
	for _, tt := range []struct {
		opts       NegotiateOptions
		server     string
		port       uint16
		serverRecs int
		portRecs   int
	}{
		{NegotiateOptions{NTPPort: 123}, "", 0, 0, 0},
		{NegotiateOptions{NTPPort: 1123}, "", 1123, 0, 1},
		{NegotiateOptions{NTPServer: "ntp.example.com", NTPPort: 1123}, "ntp.example.com", 1123, 1, 1},
	} {
		resp, err := Negotiate(goodRequest(), ex.export, ring, seeded(3), tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		var s, p int
		for _, r := range resp {
			if r.Type == RecServer {
				s++
				if string(r.Body) != tt.server || !r.Critical {
					t.Errorf("server record %q critical=%v", r.Body, r.Critical)
				}
			}
			if r.Type == RecPort {
				p++
				if binary.BigEndian.Uint16(r.Body) != tt.port {
					t.Errorf("port record %v", r.Body)
				}
			}
		}
		if s != tt.serverRecs || p != tt.portRecs {
			t.Errorf("%+v: %d server, %d port records", tt.opts, s, p)
		}
	}
	resp, err := Negotiate(goodRequest(), ex.export, ring, seeded(3), NegotiateOptions{NTPServer: "bad name"})
	if !errors.Is(err, &ProtocolError{Code: CodeInternalServerError}) || !errors.Is(err, ErrConfig) || countCookies(resp) != 0 {
		t.Errorf("invalid NTPServer: err %v, %d cookies", err, countCookies(resp))
	}
}

func TestNegotiateRefusals(t *testing.T) {
	np, aead, eom := NextProtocolRecord(0), AEADRecord(15), EndOfMessage()
	tests := []struct {
		name string
		req  []Record
		code ErrorCode
		why  error
	}{
		{"empty", nil, CodeBadRequest, ErrNoEndOfMessage},
		{"no EOM", []Record{np, aead}, CodeBadRequest, ErrNoEndOfMessage},
		{"EOM twice", []Record{np, eom, aead, eom}, CodeBadRequest, ErrDataAfterEnd},
		{"no next protocol", []Record{aead, eom}, CodeBadRequest, ErrMissingRecord},
		{"no AEAD with NTPv4", []Record{np, eom}, CodeBadRequest, ErrMissingRecord},
		{"next protocol twice", []Record{np, np, aead, eom}, CodeBadRequest, ErrDuplicateRecord},
		{"AEAD twice", []Record{np, aead, aead, eom}, CodeBadRequest, ErrDuplicateRecord},
		{"next protocol not critical", []Record{{Type: RecNextProtocol, Body: []byte{0, 0}}, aead, eom}, CodeBadRequest, ErrCriticalBit},
		{"EOM not critical", []Record{np, aead, {Type: RecEndOfMessage}}, CodeBadRequest, ErrCriticalBit},
		{"EOM with body", []Record{np, aead, {Type: RecEndOfMessage, Critical: true, Body: []byte{0}}}, CodeBadRequest, ErrBodyLength},
		{"empty next protocol", []Record{NextProtocolRecord(), aead, eom}, CodeBadRequest, ErrBodyLength},
		{"empty AEAD list", []Record{np, AEADRecord(), eom}, CodeBadRequest, ErrBodyLength},
		{"odd next protocol", []Record{{Type: RecNextProtocol, Critical: true, Body: []byte{0, 0, 0}}, aead, eom}, CodeBadRequest, ErrBodyLength},
		{"odd AEAD", []Record{np, {Type: RecAEAD, Body: []byte{0, 15, 0}}, eom}, CodeBadRequest, ErrBodyLength},
		{"error record", []Record{np, aead, ErrorRecord(1), eom}, CodeBadRequest, ErrUnexpectedRecord},
		{"warning record", []Record{np, aead, WarningRecord(1), eom}, CodeBadRequest, ErrUnexpectedRecord},
		{"cookie record", []Record{np, aead, CookieRecord([]byte{1}), eom}, CodeBadRequest, ErrUnexpectedRecord},
		{"port of 3 bytes", []Record{np, aead, {Type: RecPort, Body: []byte{0, 1, 2}}, eom}, CodeBadRequest, ErrBodyLength},
		{"port 0", []Record{np, aead, PortRecord(0), eom}, CodeBadRequest, ErrBadPort},
		{"bad server", []Record{np, aead, ServerRecord("a b"), eom}, CodeBadRequest, ErrBadServerName},
		{"unknown critical", []Record{np, {Type: 0x1234, Critical: true}, aead, eom}, CodeUnrecognizedCritical, ErrUnknownCritical},
		{"too many records", append(make([]Record, MaxRequestRecords), eom), CodeBadRequest, ErrTooManyRecords},
	}
	ring := testRing(t, 1)
	for _, tt := range tests {
		var ex fakeExporter
		resp, err := Negotiate(tt.req, ex.export, ring, seeded(4), NegotiateOptions{})
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != tt.code || !errors.Is(err, tt.why) {
			t.Errorf("%s: err = %v, want code %d (%v)", tt.name, err, tt.code, tt.why)
			continue
		}
		want := ErrorResponse(tt.code)
		if len(resp) != 2 || resp[0].Type != RecError || !bytes.Equal(resp[0].Body, want[0].Body) || resp[1].Type != RecEndOfMessage {
			t.Errorf("%s: response %+v, want %+v", tt.name, resp, want)
		}
		if len(ex.contexts) != 0 {
			t.Errorf("%s: keys exported for a refused request", tt.name)
		}
	}
}

func TestNegotiateNoCommon(t *testing.T) {
	ring := testRing(t, 1)
	var ex fakeExporter
	resp, err := Negotiate([]Record{NextProtocolRecord(0x8001), EndOfMessage()}, ex.export, ring, seeded(5), NegotiateOptions{})
	if !errors.Is(err, ErrNoCommonProtocol) || len(resp) != 2 || resp[0].Type != RecNextProtocol || len(resp[0].Body) != 0 {
		t.Errorf("no NTPv4: err %v, resp %+v", err, resp)
	}
	resp, err = Negotiate([]Record{NextProtocolRecord(0), AEADRecord(17, 1), EndOfMessage()}, ex.export, ring, seeded(5), NegotiateOptions{})
	if !errors.Is(err, ErrNoCommonAEAD) || len(resp) != 3 || resp[1].Type != RecAEAD || len(resp[1].Body) != 0 {
		t.Errorf("no AEAD: err %v, resp %+v", err, resp)
	}
	if len(ex.contexts) != 0 {
		t.Error("keys exported without agreement")
	}
}

func TestNegotiateInternalErrors(t *testing.T) {
	ring := testRing(t, 1)
	failing := func(string, []byte, int) ([]byte, error) { return nil, errors.New("boom") }
	short := func(string, []byte, int) ([]byte, error) { return make([]byte, 16), nil }
	for name, ex := range map[string]Exporter{"failing": failing, "short": short} {
		resp, err := Negotiate(goodRequest(), ex, ring, seeded(6), NegotiateOptions{})
		if !errors.Is(err, &ProtocolError{Code: CodeInternalServerError}) || countCookies(resp) != 0 || resp[0].Type != RecError {
			t.Errorf("%s exporter: err %v resp %+v", name, err, resp)
		}
	}
	var ex fakeExporter
	resp, err := Negotiate(goodRequest(), ex.export, ring, bytes.NewReader(nil), NegotiateOptions{})
	if !errors.Is(err, &ProtocolError{Code: CodeInternalServerError}) || countCookies(resp) != 0 {
		t.Errorf("empty rand: err %v", err)
	}
	resp, err = Negotiate(goodRequest(), ex.export, nil, seeded(6), NegotiateOptions{})
	if !errors.Is(err, &ProtocolError{Code: CodeInternalServerError}) || countCookies(resp) != 0 {
		t.Errorf("nil ring: err %v", err)
	}
}

func TestReadResponse(t *testing.T) {
	c := CookieRecord(make([]byte, 104))
	np, aead, eom := NextProtocolRecord(0), AEADRecord(15), EndOfMessage()
	ok := []Record{np, aead, c, eom}
	nine := []Record{np, aead}
	for range 9 {
		nine = append(nine, c)
	}
	nine = append(nine, eom)
	tests := []struct {
		name string
		recs []Record
		want error
	}{
		{"error record wins", []Record{ErrorRecord(2), {Type: 99, Critical: true}}, &ProtocolError{Code: CodeInternalServerError}},
		{"warning", []Record{np, aead, WarningRecord(0), c, eom}, ErrPeerWarning},
		{"no EOM", []Record{np, aead, c}, ErrNoEndOfMessage},
		{"empty protocols", []Record{NextProtocolRecord(), eom}, ErrNoCommonProtocol},
		{"protocol not offered", []Record{NextProtocolRecord(1), aead, c, eom}, ErrNotOffered},
		{"two protocols", []Record{NextProtocolRecord(0, 0), aead, c, eom}, ErrNotOffered},
		{"empty AEAD", []Record{np, AEADRecord(), eom}, ErrNoCommonAEAD},
		{"AEAD not offered", []Record{np, AEADRecord(30), c, eom}, ErrNotOffered},
		{"two AEADs", []Record{np, AEADRecord(15, 15), c, eom}, ErrBodyLength},
		{"no AEAD", []Record{np, c, eom}, ErrMissingRecord},
		{"no cookies", []Record{np, aead, eom}, ErrMissingRecord},
		{"nine cookies", nine, ErrTooManyCookies},
		{"empty cookie", []Record{np, aead, CookieRecord(nil), eom}, ErrBodyLength},
		{"two servers", []Record{np, aead, ServerRecord("a.example"), ServerRecord("b.example"), c, eom}, ErrDuplicateRecord},
		{"bad server", []Record{np, aead, ServerRecord("fe80::1%eth0"), c, eom}, ErrBadServerName},
		{"unknown critical", []Record{np, aead, {Type: 0x4000, Critical: true}, c, eom}, ErrUnknownCritical},
	}
	for _, tt := range tests {
		if _, err := readResponse(tt.recs, []uint16{15}); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	p, err := readResponse(append([]Record{{Type: 0x4000, Body: []byte{1}}, ServerRecord("ntp.example"), PortRecord(1234)}, ok...), []uint16{15})
	if err != nil || p.aead != 15 || len(p.cookies) != 1 || p.server != "ntp.example" || p.port != 1234 {
		t.Errorf("valid response: %+v, %v", p, err)
	}
}

// The server's preference decides among the AEADs the client offers (RFC
// 8915 §4.1.5 leaves it the choice): by default AES-128-GCM-SIV, with its
// 72-octet cookies; with AEADs {15} (ntsaeads 15) never 30; a preference the
// NTP path cannot serve is a configuration error.
func TestNegotiateAEADPreference(t *testing.T) {
	ring := testRing(t, 1)
	for _, tc := range []struct {
		offer  []uint16
		prefs  []uint16
		want   uint16
		cookie int
	}{
		{[]uint16{15, 30}, nil, 30, CookieSizeGCMSIV},
		{[]uint16{15}, nil, 15, CookieSize},
		{[]uint16{30, 15}, []uint16{15, 30}, 15, CookieSize},
		{[]uint16{30, 15}, []uint16{15}, 15, CookieSize},
		{[]uint16{30}, []uint16{30}, 30, CookieSizeGCMSIV},
	} {
		var ex fakeExporter
		req := []Record{NextProtocolRecord(ProtocolNTPv4), AEADRecord(tc.offer...), EndOfMessage()}
		resp, err := Negotiate(req, ex.export, ring, seeded(2), NegotiateOptions{AEADs: tc.prefs})
		if err != nil {
			t.Fatalf("offer %v prefs %v: %v", tc.offer, tc.prefs, err)
		}
		if !bytes.Equal(resp[1].Body, []byte{0, byte(tc.want)}) || len(resp[2].Body) != tc.cookie {
			t.Errorf("offer %v prefs %v: AEAD %v, cookie %d octets; want %d, %d", tc.offer, tc.prefs, resp[1].Body, len(resp[2].Body), tc.want, tc.cookie)
		}
		if c, err := ring.OpenCookie(resp[2].Body); err != nil || c.AEAD != tc.want {
			t.Errorf("cookie opens as %+v, %v", c, err)
		}
	}
	var ex fakeExporter
	req := []Record{NextProtocolRecord(ProtocolNTPv4), AEADRecord(30), EndOfMessage()}
	if _, err := Negotiate(req, ex.export, ring, seeded(2), NegotiateOptions{AEADs: []uint16{15}}); !errors.Is(err, ErrNoCommonAEAD) {
		t.Errorf("30 offered, 15 preferred only: %v", err)
	}
	if err := (NegotiateOptions{AEADs: []uint16{17}}).Validate(); err == nil {
		t.Error("AEAD 17 accepted as a preference")
	}
}
