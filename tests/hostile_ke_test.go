package tests

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"timegate/nts"
)

// keRecord is one record of a raw NTS-KE message.
type keRecord struct {
	typ      uint16 // without the critical bit
	critical bool
	body     []byte
}

func rec(typ uint16, critical bool, body []byte) []byte {
	if critical {
		typ |= 0x8000
	}
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

func u16s(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

// The records of a good request: End of Message, Next Protocol NTPv4,
// AEAD 15. Functions, not variables: no package-level state.
func recEOM() []byte  { return rec(0, true, nil) }
func recNTP() []byte  { return rec(1, true, u16s(0)) }
func recAEAD() []byte { return rec(4, false, u16s(15)) }

func parseRecords(b []byte) ([]keRecord, error) {
	var out []keRecord
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%d octets of a record header", len(b))
		}
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if 4+n > len(b) {
			return nil, fmt.Errorf("record of %d octets, %d left", n, len(b)-4)
		}
		out = append(out, keRecord{typ: typ &^ 0x8000, critical: typ&0x8000 != 0, body: b[4 : 4+n]})
		b = b[4+n:]
	}
	return out, nil
}

// keOutcome is what one KE attack must get.
type keOutcome int

const (
	keKeys       keOutcome = iota // Next Protocol 0, AEAD 15, 8 cookies, End of Message
	keErrorBad                    // Error record "bad request", End of Message
	keErrorCrit                   // Error record "unrecognized critical record", End of Message
	keNoProto                     // Next Protocol record with no protocol: nothing in common
	keNoAEAD                      // Next Protocol 0, an empty AEAD record, no cookie: no AEAD in common
	keSilentEnd                   // the server closes without a record
	keTLSRefused                  // the TLS handshake fails
)

type keCase struct {
	name    string
	tls     *tls.Config // nil: TLS 1.3 with ALPN ntske/1
	payload []byte
	halfEnd bool // close our writing side after the payload
	want    keOutcome
	tlsErr  string // for keTLSRefused: text of the client's error
}

// keResult is what a raw session saw: the handshake error, or the bytes the
// server sent until it closed.
func (h *hostile) keRaw(src string, c keCase) ([]byte, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	raw, err := d.Dial("tcp", h.keAddr())
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(8 * time.Second))
	conf := c.tls
	if conf == nil {
		conf = &tls.Config{NextProtos: []string{nts.ALPN}}
	}
	conf = conf.Clone()
	conf.ServerName, conf.InsecureSkipVerify = "localhost", true
	tc := tls.Client(raw, conf)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	go func() { // the server may stop reading early: write aside
		tc.Write(c.payload)
		if c.halfEnd {
			tc.CloseWrite()
		}
	}()
	return io.ReadAll(tc)
}

func judgeKE(c keCase, resp []byte, err error) string {
	if c.want == keTLSRefused {
		if err == nil || !strings.Contains(err.Error(), c.tlsErr) {
			return fmt.Sprintf("handshake: %v, want a failure with %q", err, c.tlsErr)
		}
		return ""
	}
	if err != nil && !strings.Contains(err.Error(), "reset") {
		return fmt.Sprintf("session: %v", err)
	}
	recs, perr := parseRecords(resp)
	if perr != nil {
		return fmt.Sprintf("response not well formed: %v (%x)", perr, resp)
	}
	count := map[uint16]int{}
	for _, r := range recs {
		count[r.typ]++
	}
	last := len(recs) > 0 && recs[len(recs)-1].typ == 0 && recs[len(recs)-1].critical
	errCode := func(code uint16) bool {
		return len(recs) == 2 && recs[0].typ == 2 && recs[0].critical && string(recs[0].body) == string(u16s(code)) && last
	}
	ok := false
	switch c.want {
	case keKeys:
		ok = last && count[1] == 1 && count[4] == 1 && count[5] == nts.MaxCookies && count[2] == 0
	case keErrorBad:
		ok = errCode(uint16(nts.CodeBadRequest))
	case keErrorCrit:
		ok = errCode(uint16(nts.CodeUnrecognizedCritical))
	case keNoProto:
		ok = last && count[1] == 1 && len(recs[0].body) == 0 && count[5] == 0
	case keNoAEAD:
		ok = last && count[1] == 1 && count[4] == 1 && len(recs) == 3 && len(recs[1].body) == 0 && count[5] == 0
	case keSilentEnd:
		ok = len(resp) == 0
	}
	if !ok {
		return fmt.Sprintf("response %+v does not match outcome %d", recs, c.want)
	}
	return ""
}

// keCases: TLS-level and record-level attacks on NTS-KE (RFC 8915 §4).
func keCases() []keCase {
	tls12 := &tls.Config{MaxVersion: tls.VersionTLS12, NextProtos: []string{nts.ALPN}}
	var tiny, bigAEAD []byte
	for range 10000 {
		tiny = append(tiny, rec(0x4000, false, nil)...)
	}
	ids := make([]uint16, 1000)
	for i := range ids {
		ids[i] = uint16(1000 + i)
	}
	ids[999] = 15
	bigAEAD = rec(4, false, u16s(ids...))
	good := cat(recNTP(), recAEAD(), recEOM())
	return []keCase{
		{name: "valid request", payload: good, want: keKeys},
		{name: "valid request, then our side closed", payload: good, halfEnd: true, want: keKeys},
		{name: "TLS 1.2", tls: tls12, want: keTLSRefused, tlsErr: "protocol version"},
		{name: "no ALPN", tls: &tls.Config{}, payload: good, want: keSilentEnd},
		{name: "wrong ALPN (h2)", tls: &tls.Config{NextProtos: []string{"h2"}}, want: keTLSRefused, tlsErr: "no application protocol"},
		{name: "ALPN ntske/2", tls: &tls.Config{NextProtos: []string{"ntske/2"}}, want: keTLSRefused, tlsErr: "no application protocol"},
		{name: "oversize record (65535-octet body)", payload: cat(rec(0x4000, false, make([]byte, 65535)), good), want: keErrorBad},
		{name: "record of 1021 octets (request over 1024)", payload: cat(rec(0x4000, false, make([]byte, 1021)), good), want: keErrorBad},
		{name: "unterminated, then closed", payload: cat(recNTP(), recAEAD()), halfEnd: true, want: keErrorBad},
		{name: "record header cut, then closed", payload: cat(recNTP(), recAEAD(), []byte{0x80}), halfEnd: true, want: keErrorBad},
		{name: "10000 tiny records", payload: cat(tiny, good), want: keErrorBad},
		{name: "33 records", payload: cat(repeatRec(30), good), want: keErrorBad},
		{name: "AEAD list of 1000 entries", payload: cat(recNTP(), bigAEAD, recEOM()), want: keErrorBad},
		{name: "unknown critical record", payload: cat(recNTP(), recAEAD(), rec(0x1234, true, []byte{1, 2}), recEOM()), want: keErrorCrit},
		{name: "unknown non-critical record", payload: cat(recNTP(), recAEAD(), rec(0x1234, false, []byte{1, 2}), recEOM()), want: keKeys},
		{name: "data after End of Message", payload: cat(good, recNTP()), want: keErrorBad},
		{name: "only End of Message", payload: recEOM(), want: keErrorBad},
		{name: "no Next Protocol", payload: cat(recAEAD(), recEOM()), want: keErrorBad},
		{name: "Next Protocol not critical", payload: cat(rec(1, false, u16s(0)), recAEAD(), recEOM()), want: keErrorBad},
		{name: "End of Message not critical", payload: cat(recNTP(), recAEAD(), rec(0, false, nil)), want: keErrorBad},
		{name: "two Next Protocol records", payload: cat(recNTP(), recNTP(), recAEAD(), recEOM()), want: keErrorBad},
		{name: "odd Next Protocol body", payload: cat(rec(1, true, []byte{0, 0, 0}), recAEAD(), recEOM()), want: keErrorBad},
		{name: "Next Protocol 0x7fff only", payload: cat(rec(1, true, u16s(0x7fff)), recAEAD(), recEOM()), want: keNoProto},
		{name: "AEAD 999 only", payload: cat(recNTP(), rec(4, false, u16s(999)), recEOM()), want: keNoAEAD},
		{name: "empty AEAD list", payload: cat(recNTP(), rec(4, false, nil), recEOM()), want: keErrorBad},
		{name: "Error record from the client", payload: cat(recNTP(), recAEAD(), rec(2, true, u16s(1)), recEOM()), want: keErrorBad},
		{name: "New Cookie from the client", payload: cat(recNTP(), recAEAD(), rec(5, false, make([]byte, 104)), recEOM()), want: keErrorBad},
		{name: "Port 0", payload: cat(recNTP(), recAEAD(), rec(7, false, u16s(0)), recEOM()), want: keErrorBad},
		{name: "Server name of 300 octets", payload: cat(recNTP(), recAEAD(), rec(6, false, make([]byte, 300)), recEOM()), want: keErrorBad},
		{name: "empty request, our side closed", halfEnd: true, want: keSilentEnd},
		// Slowloris inside TLS: cut at the session deadline (2 s), nothing sent.
		{name: "handshake, then silence", want: keSilentEnd},
		{name: "half a record, then silence", payload: cat(recNTP(), []byte{0x80, 0x04, 0x00}), want: keSilentEnd},
	}
}

func repeatRec(n int) []byte {
	var b []byte
	for range n {
		b = append(b, rec(0x4000, false, nil)...)
	}
	return b
}

// runKE runs the KE cases in parallel, each from its own address (so that
// ntsratelimit, per source, plays no part), while idle and half-open
// connections hold slots; a good client must still get keys.
func (h *hostile) runKE(t *testing.T) {
	stop := h.holdIdle(t, 40)
	defer stop()
	cases := keCases()
	var wg sync.WaitGroup
	msgs := make([]string, len(cases))
	for i, c := range cases {
		wg.Go(func() {
			resp, err := h.keRaw(fmt.Sprintf("127.0.1.%d", i+1), c)
			msgs[i] = judgeKE(c, resp, err)
		})
	}
	wg.Wait()
	for i, m := range msgs {
		if m != "" {
			t.Errorf("KE %s: %s", cases[i].name, m)
		}
	}
	t.Logf("%d KE cases", len(cases))
}

// holdIdle opens n connections that never finish a handshake (half of
// them idle from the start, half after half a ClientHello) from addresses
// 127.0.2.x, each re-opened when the server cuts it, until stop.
func (h *hostile) holdIdle(t *testing.T, n int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			src := &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(i+1))}
			for {
				select {
				case <-done:
					return
				default:
				}
				c, err := (&net.Dialer{LocalAddr: src, Timeout: time.Second}).Dial("tcp", h.keAddr())
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if i%2 == 1 {
					c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc})
				}
				go func() { <-done; c.Close() }()
				c.Read(make([]byte, 1))
				c.Close()
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
