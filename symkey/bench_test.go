package symkey

import "testing"

// BenchmarkSum and BenchmarkVerify measure each type over a 48-byte NTP
// packet, the size of an RFC 8573-authenticated request without extensions.
func BenchmarkSum(b *testing.B) {
	pkt := make([]byte, 48)
	for _, k := range benchKeys(b) {
		dst := make([]byte, 0, maxMACSize)
		b.Run(k.Type().String(), func(b *testing.B) {
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for b.Loop() {
				k.Sum(dst, pkt)
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	pkt := make([]byte, 48)
	for _, k := range benchKeys(b) {
		mac := k.Sum(nil, pkt)
		b.Run(k.Type().String(), func(b *testing.B) {
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for b.Loop() {
				if !k.Verify(pkt, mac) {
					b.Fatal("Verify failed")
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	data := []byte("1 AES128 HEX:2B7E151628AED2A6ABF7158809CF4F3C\n" +
		"2 AES256 ASCII:0123456789abcdef0123456789abcdef\n" +
		"3 SHA1 HEX:1DC764E0791B11FA67EFC7ECBC4B0D73F68A070C\n" +
		"# comment\n4 MD5 ALongAndRandomPassword\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse("k", data); err != nil {
			b.Fatal(err)
		}
	}
}

func benchKeys(b *testing.B) []*Key {
	return []*Key{
		mustKey(b, 1, AES128CMAC, make([]byte, 16)),
		mustKey(b, 2, AES256CMAC, make([]byte, 32)),
		mustKey(b, 3, SHA1, make([]byte, 20)),
		mustKey(b, 4, MD5, make([]byte, 16)),
	}
}
