package main

import (
	"bytes"
	"testing"

	"timegate/ntp"
	"timegate/nts"
)

// Requests built ahead are standard NTS requests (UID, one cookie, no
// placeholders, Authenticator last), each with the nonce of its ring slot.
func TestBuildNTSRequests(t *testing.T) {
	ke := &nts.KEResult{AEAD: nts.AEADAESSIVCMAC256, C2S: bytes.Repeat([]byte{1}, 32), S2C: bytes.Repeat([]byte{2}, 32)}
	for i := range nts.MaxCookies {
		ke.Cookies = append(ke.Cookies, bytes.Repeat([]byte{byte(i)}, nts.CookieSize))
	}
	const size = 64
	r, err := buildNTSRequests(ke, size)
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := NewRing(size)
	w := &worker{ring: ring}
	buf := make([]byte, recvBufSize)
	for seq := range uint64(2 * size) {
		n := r.fill(buf, w, seq, int64(seq))
		p, err := ntp.Parse(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		f := p.NTS
		if f.UIDs != 1 || f.Cookies != 1 || f.Placeholders != 0 || f.Auths != 1 || len(f.Cookie) != nts.CookieSize {
			t.Fatalf("request %d: %+v", seq, f)
		}
		if nonce := uint64(p.Header.Transmit); nonce&(size-1) != seq&(size-1) {
			t.Fatalf("request %d: nonce %x not in its slot", seq, nonce)
		}
		if _, ok := ring.Take(uint64(p.Header.Transmit)); !ok {
			t.Fatalf("request %d not in the ring", seq)
		}
	}
}
