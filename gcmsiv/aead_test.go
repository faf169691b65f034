package gcmsiv

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/c2sp/wycheproof"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 8452 Appendix A: POLYVAL(H, X_1, X_2).
func TestPolyvalRFC8452(t *testing.T) {
	p := polyval{h: loadElement(unhex(t, "25629347589242761d31f826ba4b757b"))}
	p.update(unhex(t, "4f4f95668c83dfb6401762bb2d01a262d1a24ddd2721d006bbe45f20d3c9f362"))
	var out [16]byte
	p.s.put(out[:])
	if got := hex.EncodeToString(out[:]); got != "f7a3b47b846119fae5b7866cf5e5b77e" {
		t.Errorf("POLYVAL = %s", got)
	}
}

// dot against a bit-by-bit reference multiply: a·b·x^-128 mod P, for
// seeded random operands (the reference is slow and obviously right).
func TestDotMatchesReference(t *testing.T) {
	x := fieldElement{0x0123456789abcdef, 0xfedcba9876543210}
	y := fieldElement{0x0f1e2d3c4b5a6978, 0x8796a5b4c3d2e1f0}
	for i := range 200 {
		if got, want := dot(x, y), refDot(x, y); got != want {
			t.Fatalf("round %d: dot(%x, %x) = %x, want %x", i, x, y, got, want)
		}
		x, y = y, fieldElement{x.lo*6364136223846793005 + 1442695040888963407, x.hi ^ y.lo<<7 ^ uint64(i)}
	}
}

// refDot multiplies in GF(2^128) by shift-and-add modulo P, then divides by
// x^128 by multiplying with x^-128 = x^-1 applied 128 times.
func refDot(a, b fieldElement) fieldElement {
	var r fieldElement
	for i := range 128 {
		var bit uint64
		if i < 64 {
			bit = b.lo >> i & 1
		} else {
			bit = b.hi >> (i - 64) & 1
		}
		if bit == 1 {
			r.lo ^= a.lo
			r.hi ^= a.hi
		}
		a = mulX(a)
	}
	for range 128 {
		r = divX(r)
	}
	return r
}

// P = x^128 + x^127 + x^126 + x^121 + 1.
func mulX(a fieldElement) fieldElement {
	carry := a.hi >> 63
	a.hi = a.hi<<1 | a.lo>>63
	a.lo <<= 1
	if carry == 1 {
		a.lo ^= 1
		a.hi ^= 1<<63 | 1<<62 | 1<<57
	}
	return a
}

func divX(a fieldElement) fieldElement {
	if a.lo&1 == 1 { // add P, then shift: x^-1 = (x^127 + x^126 + x^121 + ... )
		a.lo ^= 1
		a.hi ^= 1<<63 | 1<<62 | 1<<57
		a.lo = a.lo>>1 | a.hi<<63
		a.hi = a.hi>>1 | 1<<63
		return a
	}
	a.lo = a.lo>>1 | a.hi<<63
	a.hi >>= 1
	return a
}

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

type wycheTest struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Key     hexBytes `json:"key"`
	IV      hexBytes `json:"iv"`
	AAD     hexBytes `json:"aad"`
	Msg     hexBytes `json:"msg"`
	CT      hexBytes `json:"ct"`
	Tag     hexBytes `json:"tag"`
	Result  string   `json:"result"`
}

// Wycheproof's aes_gcm_siv_test.json: every valid vector seals to its
// ciphertext and tag and opens; every invalid one is refused by Open.
func TestWycheproof(t *testing.T) {
	data, err := fs.ReadFile(wycheproof.TestVectors, "aes_gcm_siv_test.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		NumberOfTests int `json:"numberOfTests"`
		TestGroups    []struct {
			Tests []wycheTest `json:"tests"`
		} `json:"testGroups"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	n, valid := 0, 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			n++
			a, err := New(tc.Key)
			if err != nil {
				t.Fatalf("tc %d: %v", tc.TcID, err)
			}
			sealed := append(append([]byte(nil), tc.CT...), tc.Tag...)
			pt, err := a.Open(nil, tc.IV, sealed, tc.AAD)
			if tc.Result == "invalid" {
				if err == nil {
					t.Errorf("tc %d (%s): invalid vector opened", tc.TcID, tc.Comment)
				}
				continue
			}
			valid++
			if err != nil || !bytes.Equal(pt, tc.Msg) {
				t.Errorf("tc %d (%s): Open = %x, %v", tc.TcID, tc.Comment, pt, err)
			}
			if got := a.Seal(nil, tc.IV, tc.Msg, tc.AAD); !bytes.Equal(got, sealed) {
				t.Errorf("tc %d (%s): Seal = %x, want %x", tc.TcID, tc.Comment, got, sealed)
			}
			// In place, from an unaligned start.
			buf := append(make([]byte, 3, 3+len(tc.Msg)+TagSize), tc.Msg...)[3:]
			if got := a.Seal(buf[:0], tc.IV, buf, tc.AAD); !bytes.Equal(got, sealed) {
				t.Errorf("tc %d: in-place Seal = %x", tc.TcID, got)
			}
		}
	}
	if n != f.NumberOfTests || valid == 0 {
		t.Fatalf("ran %d of %d tests (%d valid)", n, f.NumberOfTests, valid)
	}
}

func TestTamperAndSizes(t *testing.T) {
	if _, err := New(make([]byte, 24)); err == nil {
		t.Error("24-byte key accepted")
	}
	a, _ := New(unhex(t, "ee8e1ed9ff2540ae8f2ba9f50bc2f27c"))
	nonce := unhex(t, "752abad3e0afb5f434dc4310")
	ad, msg := []byte("example"), []byte("Hello world")
	sealed := a.Seal(nil, nonce, msg, ad)
	// RFC 8452 Appendix C.1's "Hello world" example.
	if got := hex.EncodeToString(sealed); got != "5d349ead175ef6b1def6fd4fbcdeb7e4793f4a1d7e4faa70100af1" {
		t.Errorf("Seal = %s", got)
	}
	for i := range 8 * len(sealed) {
		bad := bytes.Clone(sealed)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := a.Open(nil, nonce, bad, ad); err == nil {
			t.Fatalf("bit %d flipped opens", i)
		}
	}
	if _, err := a.Open(nil, nonce, sealed[:TagSize-1], ad); err == nil {
		t.Error("short ciphertext opens")
	}
	dst := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { a.Seal(dst, nonce, msg, ad) }); n > 1 {
		t.Errorf("Seal allocates %v times, want at most the per-nonce key schedule", n)
	}
	if n := testing.AllocsPerRun(100, func() { a.Open(dst, nonce, sealed, ad) }); n > 2 {
		t.Errorf("Open allocates %v times, want the key schedule and the scratch", n)
	}
}
