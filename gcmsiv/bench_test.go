package gcmsiv

import "testing"

// BenchmarkSeal48 seals what an NTS server seals per reply with AEAD 30: a
// 48-byte header as associated data and a ~100-byte plaintext (a cookie).
func BenchmarkSeal48(b *testing.B) {
	a, _ := New(make([]byte, 16))
	nonce, ad, pt := make([]byte, NonceSize), make([]byte, 48), make([]byte, 100)
	dst := make([]byte, 0, 200)
	b.ReportAllocs()
	b.SetBytes(int64(len(ad) + len(pt)))
	for b.Loop() {
		a.Seal(dst, nonce, pt, ad)
	}
}

func BenchmarkOpen48(b *testing.B) {
	a, _ := New(make([]byte, 16))
	nonce, ad := make([]byte, NonceSize), make([]byte, 48)
	ct := a.Seal(nil, nonce, make([]byte, 100), ad)
	dst := make([]byte, 0, 200)
	b.ReportAllocs()
	b.SetBytes(int64(len(ad) + len(ct)))
	for b.Loop() {
		if _, err := a.Open(dst, nonce, ct, ad); err != nil {
			b.Fatal(err)
		}
	}
}
