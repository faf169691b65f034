package ntp

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func sampleHeader() Header {
	now := time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)
	return Header{
		Leap: LeapAdd, Version: 4, Mode: ModeServer, Stratum: 2, Poll: 6, Precision: -20,
		RootDelay: Time32From(1500 * time.Microsecond), RootDispersion: Time32From(20 * time.Millisecond),
		RefID: 0x7f000001, RefTime: Time64From(now.Add(-time.Minute)), Origin: Time64From(now.Add(-time.Second)),
		Receive: Time64From(now), Transmit: Time64From(now.Add(time.Microsecond)),
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := sampleHeader()
	b := h.Append(nil)
	if len(b) != HeaderLen {
		t.Fatalf("len = %d", len(b))
	}
	got, err := DecodeHeader(b)
	if err != nil || got != h {
		t.Fatalf("DecodeHeader = %+v, %v; want %+v", got, err, h)
	}
	if b[0] != 1<<6|4<<3|4 {
		t.Errorf("first byte = %#x", b[0])
	}
	if _, err := DecodeHeader(b[:47]); !errors.Is(err, ErrShort) {
		t.Errorf("short header err = %v", err)
	}
}

func TestExtFieldIteration(t *testing.T) {
	h := sampleHeader()
	h.Mode = ModeClient
	b := h.Append(nil)
	b = AppendExtField(b, EFUniqueIdentifier, bytes.Repeat([]byte{1}, 32))
	b = AppendExtField(b, 0x1234, []byte{9}) // padded to the 16-byte minimum
	b = AppendExtField(b, EFCookie, bytes.Repeat([]byte{2}, 101))
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.NumFields != 3 || p.MAC != nil {
		t.Fatalf("fields = %d, mac = %x", p.NumFields, p.MAC)
	}
	want := []struct {
		typ       uint16
		len, off  int
		firstByte byte
	}{{EFUniqueIdentifier, 32, 48, 1}, {0x1234, 12, 84, 9}, {EFCookie, 104, 100, 2}}
	it := p.ExtFields()
	for i, w := range want {
		f, ok := it.Next()
		if !ok || f.Type != w.typ || len(f.Value) != w.len || f.Offset != w.off || f.Value[0] != w.firstByte {
			t.Fatalf("field %d = %+v ok=%v, want %+v", i, f, ok, w)
		}
	}
	if _, ok := it.Next(); ok {
		t.Fatal("iterator yielded an extra field")
	}
	if !bytes.Equal(p.Append(nil), b) {
		t.Fatal("re-encoding differs")
	}
}

func TestParseFraming(t *testing.T) {
	h := sampleHeader()
	base := h.Append(nil)
	mac := func(n int) []byte { return append(append([]byte{}, base...), make([]byte, n)...) }
	ef := func(length int) []byte {
		b := append([]byte{}, base...)
		b = append(b, 0x01, 0x04, byte(length>>8), byte(length))
		return append(b, make([]byte, max(length-4, 0))...)
	}
	cases := []struct {
		name    string
		pkt     []byte
		wantErr bool
		macLen  int
		fields  int
	}{
		{"bare header", base, false, 0, 0},
		{"crypto-NAK", mac(4), false, 4, 0},
		{"MD5/CMAC trailer", mac(20), false, 20, 0},
		{"SHA1 trailer", mac(24), false, 24, 0},
		{"24-byte digest trailer", mac(28), false, 28, 0},
		{"odd trailer", mac(7), true, 0, 0},
		{"EF shorter than 16", ef(12), true, 0, 0},
		{"EF not multiple of 4", ef(30), true, 0, 0},
		{"EF length past end", append(ef(32)[:60], 0), true, 0, 0},
		{"last EF below 28 with no MAC", append(ef(16), make([]byte, 0)...), true, 0, 0},
		{"one 28-byte EF", ef(28), false, 0, 1},
		{"EF then MAC", append(ef(16), make([]byte, 20)...), false, 20, 1},
		{"too long", mac(MaxPacketLen), true, 0, 0},
	}
	for _, c := range cases {
		p, err := Parse(c.pkt)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err = %v, wantErr %v", c.name, err, c.wantErr)
			continue
		}
		if err == nil && (len(p.MAC) != c.macLen || p.NumFields != c.fields) {
			t.Errorf("%s: mac %d fields %d, want %d %d", c.name, len(p.MAC), p.NumFields, c.macLen, c.fields)
		}
	}
}

func TestParseV3OnlyMAC(t *testing.T) {
	h := sampleHeader()
	h.Version = 3
	b := h.Append(nil)
	if _, err := Parse(append(b, make([]byte, 36)...)); err != nil {
		t.Errorf("v3 with 32-byte digest: %v", err)
	}
	ef := AppendExtField(append([]byte{}, b...), 0x0104, make([]byte, 30))
	if _, err := Parse(append(ef, 1, 2)); err == nil {
		t.Error("v3 packet with trailing garbage accepted")
	}
}

func FuzzParse(f *testing.F) {
	h := sampleHeader()
	b := h.Append(nil)
	f.Add(b)
	f.Add(append(append([]byte{}, b...), make([]byte, 20)...))
	f.Add(AppendExtField(append([]byte{}, b...), EFUniqueIdentifier, make([]byte, 32)))
	f.Add(AppendExtField(AppendExtField(append([]byte{}, b...), EFCookie, make([]byte, 100)), EFAuthenticator, make([]byte, 40)))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		enc := p.Append(nil)
		if !bytes.Equal(enc, data) {
			t.Fatalf("parse→encode changed the packet:\n%x\n%x", data, enc)
		}
		p2, err := Parse(enc)
		if err != nil || p2.Header != p.Header || p2.NumFields != p.NumFields || !bytes.Equal(p2.MAC, p.MAC) {
			t.Fatalf("parse→encode→parse differs: %v", err)
		}
		n, it := 0, p.ExtFields()
		for _, ok := it.Next(); ok; _, ok = it.Next() {
			n++
		}
		if n != p.NumFields {
			t.Fatalf("iterator saw %d fields, Parse counted %d", n, p.NumFields)
		}
	})
}

// TestParseFindsNTSFields: Parse's one walk locates the NTS fields as
// FindNTS's separate walk does: counts, the first UID, the last cookie and
// Authenticator with its offset, and whether the placeholders agree.
func TestParseFindsNTSFields(t *testing.T) {
	uid := bytes.Repeat([]byte{1}, 32)
	cookie := bytes.Repeat([]byte{2}, 100)
	req := ClientRequest(nil, 4, 3, 1)
	req = AppendExtField(req, EFUniqueIdentifier, uid)
	req = AppendExtField(req, EFCookie, cookie)
	req = AppendExtField(req, EFCookiePlaceholder, make([]byte, 100))
	req = AppendExtField(req, EFCookiePlaceholder, make([]byte, 100))
	authAt := len(req)
	req = AppendExtField(req, EFAuthenticator, make([]byte, 40))
	p, err := Parse(req)
	if err != nil {
		t.Fatal(err)
	}
	f := p.NTS
	if f.UIDs != 1 || f.Cookies != 1 || f.Placeholders != 2 || f.Auths != 1 || !f.Any() ||
		!bytes.Equal(f.UID, uid) || !bytes.Equal(f.Cookie, cookie) || f.PlaceholderLen != 100 ||
		f.AuthOffset != authAt || len(f.Auth) != 40 {
		t.Fatalf("%+v", f)
	}
	if g := FindNTS(p.Fields); g.AuthOffset != f.AuthOffset || g.PlaceholderLen != f.PlaceholderLen || g.Placeholders != f.Placeholders {
		t.Errorf("FindNTS %+v, Parse %+v", g, f)
	}
	mixed := AppendExtField(ClientRequest(nil, 4, 3, 1), EFCookiePlaceholder, make([]byte, 100))
	mixed = AppendExtField(mixed, EFCookiePlaceholder, make([]byte, 104))
	if p, err := Parse(mixed); err != nil || p.NTS.PlaceholderLen != -1 {
		t.Errorf("placeholders of two lengths: %v %+v", err, p.NTS)
	}
	if p, err := Parse(ClientRequest(nil, 4, 3, 1)); err != nil || p.NTS.Any() {
		t.Errorf("plain request: %v %+v", err, p.NTS)
	}
}
