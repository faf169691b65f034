package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"timegate/ntp"
	"timegate/nts"
	"timegate/siv"
	"timegate/tests/harness"
)

// ntsKeys is what one NTS-KE with the daemon gave: keys and cookies.
type ntsKeys struct {
	c2s, s2c *siv.AEAD
	keys     *nts.KEResult
}

func (h *hostile) keAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(h.kePort)) }

func (h *hostile) ntsKE(t *testing.T, src string) *ntsKeys {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	res, err := nts.Exchange(ctx, d, h.keAddr(), &tls.Config{RootCAs: harness.CertPool(t, h.cert), ServerName: "localhost"}, []uint16{15})
	if err != nil {
		t.Fatalf("NTS-KE: %v", err)
	}
	k := &ntsKeys{keys: res}
	if k.c2s, err = siv.New(res.C2S); err != nil {
		t.Fatal(err)
	}
	if k.s2c, err = siv.New(res.S2C); err != nil {
		t.Fatal(err)
	}
	return k
}

// ntsParts describes one NTS request field by field, so that each can be
// broken in turn. The zero value of a field means "as a client sends it".
type ntsParts struct {
	vn          uint8    // 0: 4
	uid         []byte   // UID value; nil: none
	cookies     [][]byte // Cookie values
	holders     int      // Cookie Placeholders
	holderLen   int      // their value length; 0: the cookie's
	holderFill  byte     // their content
	noAuth      bool     // leave the Authenticator out
	nonce       []byte   // nil: 16 random octets
	nonceLenFix int      // if set, the Nonce Length word says this
	ctLenFix    int      // if set, the Ciphertext Length word says this
	ctFlip      bool     // flip a bit of the tag
	padJunk     bool     // a non-zero octet in the nonce padding
	extraPad    []byte   // Additional Padding after the ciphertext
	key         *siv.AEAD
	after       []byte // raw bytes after the Authenticator
	txFlip      bool   // change the transmit timestamp after sealing
}

func (k *ntsKeys) build(i int, p ntsParts) []byte {
	vn := p.vn
	if vn == 0 {
		vn = 4
	}
	b := request(i, vn, 3)
	if p.uid != nil {
		b = ntp.AppendExtField(b, ntp.EFUniqueIdentifier, p.uid)
	}
	for _, c := range p.cookies {
		b = ntp.AppendExtField(b, ntp.EFCookie, c)
	}
	hl := p.holderLen
	if hl == 0 && len(p.cookies) > 0 {
		hl = len(p.cookies[0])
	}
	for range p.holders {
		b = ntp.AppendExtField(b, ntp.EFCookiePlaceholder, bytes.Repeat([]byte{p.holderFill}, hl))
	}
	if !p.noAuth {
		b = append(b, k.authenticator(b, p)...)
	}
	b = append(b, p.after...)
	if p.txFlip {
		b[47] ^= 0x10
	}
	return b
}

// authenticator seals nothing under the associated data ad, the request so
// far (RFC 8915 §5.6), then breaks it as p says.
func (k *ntsKeys) authenticator(ad []byte, p ntsParts) []byte {
	nonce := p.nonce
	if nonce == nil {
		nonce = make([]byte, 16)
		rand.Read(nonce)
	}
	key := p.key
	if key == nil {
		key = k.c2s
	}
	sealNonce := nonce
	if len(sealNonce) == 0 {
		sealNonce = []byte{0} // the AEAD wants one; the field carries none
	}
	ct := key.Seal(nil, sealNonce, nil, ad)
	if p.ctFlip {
		ct[0] ^= 1
	}
	nl, cl := len(nonce), len(ct)
	if p.nonceLenFix != 0 {
		nl = p.nonceLenFix
	}
	if p.ctLenFix != 0 {
		cl = p.ctLenFix
	}
	v := binary.BigEndian.AppendUint16(nil, uint16(nl))
	v = binary.BigEndian.AppendUint16(v, uint16(cl))
	v = append(v, nonce...)
	v = append(v, make([]byte, pad(len(nonce)))...)
	if p.padJunk && pad(len(nonce)) > 0 {
		v[len(v)-1] = 0xff
	}
	v = append(v, ct...)
	v = append(v, make([]byte, pad(len(ct)))...)
	v = append(v, p.extraPad...)
	return field(ntp.EFAuthenticator, uint16(4+len(v)), v)
}

func pad(n int) int { return (4 - n%4) % 4 }

// checkNTSReply checks an NTS reply: the UID echoed, the Authenticator
// last and opening under S2C over everything before it, and cookies inside,
// one for the request's own and one per placeholder.
func (k *ntsKeys) checkNTSReply(uid []byte, cookies int) func([]byte) error {
	return func(reply []byte) error {
		p, err := ntp.Parse(reply)
		if err != nil {
			return err
		}
		sawUID, auth := false, false
		it := p.ExtFields()
		for f, ok := it.Next(); ok; f, ok = it.Next() {
			switch f.Type {
			case ntp.EFUniqueIdentifier:
				sawUID = bytes.Equal(f.Value, uid)
			case ntp.EFAuthenticator:
				n, err := k.openReply(reply[:f.Offset], f.Value)
				if err != nil {
					return err
				}
				if n != cookies {
					return fmt.Errorf("%d cookies in the reply, want %d", n, cookies)
				}
				auth = true
			}
		}
		if !sawUID || !auth {
			return fmt.Errorf("reply without the UID (%v) or an Authenticator (%v)", sawUID, auth)
		}
		return nil
	}
}

// openReply opens an Authenticator value under S2C and counts the
// cookies in its plaintext.
func (k *ntsKeys) openReply(ad, v []byte) (int, error) {
	nl, cl := int(binary.BigEndian.Uint16(v)), int(binary.BigEndian.Uint16(v[2:]))
	if 4+nl+pad(nl)+cl > len(v) {
		return 0, errors.New("reply Authenticator lengths past the field")
	}
	nonce := v[4 : 4+nl]
	ct := v[4+nl+pad(nl) : 4+nl+pad(nl)+cl]
	pt, err := k.s2c.Open(nil, nonce, ct, ad)
	if err != nil {
		return 0, fmt.Errorf("reply Authenticator does not open under S2C: %w", err)
	}
	n := 0
	for len(pt) >= 4 {
		l := int(binary.BigEndian.Uint16(pt[2:]))
		if l < 4 || l > len(pt) {
			return 0, errors.New("malformed encrypted fields")
		}
		if binary.BigEndian.Uint16(pt) == ntp.EFCookie {
			n++
		}
		pt = pt[l:]
	}
	return n, nil
}

// checkNAK checks an NTS NAK: a kiss echoing the UID, nothing else.
func checkNAK(uid []byte) func([]byte) error {
	return func(reply []byte) error {
		want := ntp.AppendExtField(nil, ntp.EFUniqueIdentifier, uid)
		if !bytes.Equal(reply[ntp.HeaderLen:], want) {
			return fmt.Errorf("NAK carries %x, want only the UID field", reply[ntp.HeaderLen:])
		}
		return nil
	}
}
