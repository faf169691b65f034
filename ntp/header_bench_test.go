package ntp

import (
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// decodeHeaderCryptobyte is the cryptobyte version of DecodeHeader, kept
// only to measure the choice issue 2 asks about: fixed-offset
// encoding/binary reads against cryptobyte's checked cursor.
func decodeHeaderCryptobyte(b []byte) (Header, bool) {
	var h Header
	s := cryptobyte.String(b)
	var b0, stratum, poll, prec uint8
	var rd, rdisp, ref uint32
	var reft, org, rec, xmt uint64
	if !s.ReadUint8(&b0) || !s.ReadUint8(&stratum) || !s.ReadUint8(&poll) || !s.ReadUint8(&prec) ||
		!s.ReadUint32(&rd) || !s.ReadUint32(&rdisp) || !s.ReadUint32(&ref) ||
		!s.ReadUint64(&reft) || !s.ReadUint64(&org) || !s.ReadUint64(&rec) || !s.ReadUint64(&xmt) {
		return h, false
	}
	h = Header{Leap: Leap(b0 >> 6), Version: (b0 >> 3) & 7, Mode: Mode(b0 & 7), Stratum: stratum,
		Poll: int8(poll), Precision: int8(prec), RootDelay: Time32(rd), RootDispersion: Time32(rdisp),
		RefID: ref, RefTime: Time64(reft), Origin: Time64(org), Receive: Time64(rec), Transmit: Time64(xmt)}
	return h, true
}

func TestCryptobyteHeaderAgrees(t *testing.T) {
	b := sampleHeader()
	enc := b.Append(nil)
	h1, _ := DecodeHeader(enc)
	h2, ok := decodeHeaderCryptobyte(enc)
	if !ok || h1 != h2 {
		t.Fatalf("%+v != %+v", h1, h2)
	}
}

func BenchmarkDecodeHeader(b *testing.B) {
	h := sampleHeader()
	enc := h.Append(nil)
	b.Run("binary", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeHeader(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cryptobyte", func(b *testing.B) {
		for b.Loop() {
			if _, ok := decodeHeaderCryptobyte(enc); !ok {
				b.Fatal("short")
			}
		}
	})
}
