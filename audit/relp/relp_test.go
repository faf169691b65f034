package relp

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, f := range []Frame{{1, "open", []byte(OpenOffer)}, {7, "rsp", []byte("200 OK")}, {3, "close", nil}, {0, "serverclose", nil}} {
		b := Append(nil, f)
		g, n, err := Parse(b)
		if err != nil || n != len(b) || g.Txnr != f.Txnr || g.Command != f.Command || !bytes.Equal(g.Data, f.Data) {
			t.Fatalf("%q: %+v %d %v", b, g, n, err)
		}
		for i := range len(b) {
			if _, _, err := Parse(b[:i]); !errors.Is(err, ErrShort) {
				t.Fatalf("%q prefix %d: %v", b, i, err)
			}
		}
	}
}

func TestParseBad(t *testing.T) {
	for _, s := range []string{"x rsp 0\n", "1  rsp 0\n", "01 rsp 0\n", "1 rsp 0 \n", "1 rsp 3 abcd\n", "1 r5p 0\n",
		"1234567890 rsp 0\n", "1 rsp 99999999 x", "1 rsp 2 ab", "1 rsp 2 abX"} {
		if _, _, err := Parse([]byte(s)); err == nil || (errors.Is(err, ErrShort) && s != "1 rsp 2 ab") {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestParseResponse(t *testing.T) {
	r, err := ParseResponse([]byte("200 OK\nrelp_version=0\ncommands=syslog"))
	if err != nil || r.Code != 200 || r.Text != "OK" {
		t.Fatal(r, err)
	}
	if r, err := ParseResponse([]byte("500 no")); err != nil || r.Code != 500 {
		t.Fatal(r, err)
	}
	for _, s := range []string{"20", "2000", "abc OK"} {
		if _, err := ParseResponse([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// FuzzParse: a frame Parse accepts re-encodes to exactly the bytes it used;
// ErrShort is only ever returned for a strict prefix that could still grow
// into a frame (never for input already longer than any valid header plus
// MaxDataLen); used bytes never exceed the input.
func FuzzParse(f *testing.F) {
	f.Add([]byte("2 rsp 6 200 OK\n"))
	f.Add([]byte("0 serverclose 0\n"))
	f.Add([]byte("1 rsp 91 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := Parse(b)
		if errors.Is(err, ErrShort) {
			if len(b) > 9+1+MaxCommand+1+9+1+MaxDataLen+1 {
				t.Fatalf("ErrShort on %d bytes", len(b))
			}
			return
		}
		if err != nil {
			return
		}
		if n > len(b) || !bytes.Equal(Append(nil, fr), b[:n]) {
			t.Fatalf("parse/encode mismatch: %q vs %q", Append(nil, fr), b[:n])
		}
		if fr.Command == "rsp" {
			if r, err := ParseResponse(fr.Data); err == nil && (r.Code < 0 || r.Code > 999) {
				t.Fatal(r)
			}
		}
	})
}

// FuzzParseResponse: an accepted status is three digits (0..999), the text
// is one trimmed line, and the parser never reads past its input.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("200 OK"))
	f.Add([]byte("200 OK\nrelp_version=0\ncommands=syslog"))
	f.Add([]byte("500 error"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			return
		}
		if r.Code < 0 || r.Code > 999 || bytes.ContainsAny([]byte(r.Text), "\n") || len(r.Text) > len(b) {
			t.Fatalf("%q → %+v", b, r)
		}
		if len(b) > 0 && r.Code != int(b[0]-'0')*100+int(b[1]-'0')*10+int(b[2]-'0') {
			t.Fatalf("%q → code %d", b, r.Code)
		}
	})
}
