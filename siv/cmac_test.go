package siv

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 4493 §4 test vectors.
func TestCMACRFC4493(t *testing.T) { forPaths(t, testCMACRFC4493) }

func testCMACRFC4493(t *testing.T, asm bool) {
	key := unhex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	msg := unhex(t, "6bc1bee22e409f96e93d7e117393172a"+
		"ae2d8a571e03ac9c9eb76fac45af8e51"+
		"30c81c46a35ce411e5fbc1191a0a52ef"+
		"f69f2445df4f9b17ad2b417be66c3710")
	c, err := newCMAC(key, asm)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(blockBytes(c.k1)), "fbeed618357133667c85e08f7236a8de"; got != want {
		t.Errorf("K1 = %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(blockBytes(c.k2)), "f7ddac306ae266ccf90bc11ee46d513b"; got != want {
		t.Errorf("K2 = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		n   int
		tag string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		tag := unhex(t, tc.tag)
		if got := c.Sum(nil, msg[:tc.n]); !bytes.Equal(got, tag) {
			t.Errorf("len %d: CMAC = %x, want %x", tc.n, got, tag)
		}
		if !c.Verify(msg[:tc.n], tag) {
			t.Errorf("len %d: Verify rejected the RFC tag", tc.n)
		}
	}
}

func TestCMACWycheproof(t *testing.T) {
	forPaths(t, func(t *testing.T, asm bool) {
		for _, tc := range loadWycheproof(t, "aes_cmac_test.json") {
			t.Run(fmt.Sprint(tc.TcID), func(t *testing.T) { checkCMACVector(t, asm, tc) })
		}
	})
}

func checkCMACVector(t *testing.T, asm bool, tc wycheTest) {
	c, err := newCMAC(tc.Key, asm)
	if containsFlag(tc.Flags, "InvalidKeySize") {
		if err == nil || !errors.Is(err, ErrKeySize) {
			t.Fatalf("NewCMAC(%d-byte key) = %v, want ErrKeySize", len(tc.Key), err)
		}
		return
	}
	if err != nil {
		t.Fatalf("NewCMAC(%d-byte key): %v", len(tc.Key), err)
	}
	valid := tc.Result == "valid"
	for _, off := range offsets {
		msg := shifted(tc.Msg, off)
		tag := shifted(tc.Tag, off)
		if got := c.Verify(msg, tag); got != valid {
			t.Errorf("offset %d: Verify = %v, want %v (%s)", off, got, valid, tc.Comment)
		}
		sum := c.Sum(shifted(nil, off), msg)
		if got := bytes.Equal(sum, tc.Tag); got != valid {
			t.Errorf("offset %d: Sum = %x, tag %x, result %s", off, sum, tc.Tag, tc.Result)
		}
	}
}

func containsFlag(flags []string, f string) bool {
	for _, g := range flags {
		if g == f {
			return true
		}
	}
	return false
}

func TestCMACKeySizes(t *testing.T) { forPaths(t, testCMACKeySizes) }

func testCMACKeySizes(t *testing.T, asm bool) {
	for n := range 70 {
		_, err := newCMAC(make([]byte, n), asm)
		ok := n == 16 || n == 24 || n == 32
		if (err == nil) != ok {
			t.Errorf("NewCMAC(%d bytes): err = %v", n, err)
		}
		if err != nil && !errors.Is(err, ErrKeySize) {
			t.Errorf("NewCMAC(%d bytes): %v is not ErrKeySize", n, err)
		}
	}
}

func TestCMACVerifyRejectsTruncatedAndLongTags(t *testing.T) {
	forPaths(t, testCMACVerifyRejectsTruncatedAndLongTags)
}

func testCMACVerifyRejectsTruncatedAndLongTags(t *testing.T, asm bool) {
	c, _ := newCMAC(make([]byte, 16), asm)
	msg := []byte("an NTP packet of forty-eight bytes, more or less")
	tag := c.Sum(nil, msg)
	for n := range len(tag) {
		if c.Verify(msg, tag[:n]) {
			t.Errorf("Verify accepted a %d-byte prefix of the tag", n)
		}
	}
	if c.Verify(msg, append(tag, 0)) {
		t.Error("Verify accepted a 17-byte tag")
	}
	for i := range 8 * len(tag) {
		bad := bytes.Clone(tag)
		bad[i/8] ^= 1 << (i % 8)
		if c.Verify(msg, bad) {
			t.Fatalf("Verify accepted the tag with bit %d flipped", i)
		}
	}
}

// Sum appends: the prefix of dst must survive and the tag must follow it.
func TestCMACSumAppends(t *testing.T) { forPaths(t, testCMACSumAppends) }

func testCMACSumAppends(t *testing.T, asm bool) {
	c, _ := newCMAC(make([]byte, 32), asm)
	msg := []byte("payload")
	want := c.Sum(nil, msg)
	dst := []byte("prefix")
	got := c.Sum(dst, msg)
	if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want) {
		t.Fatalf("Sum(prefix) = %q", got)
	}
}

func TestCMACZeroAllocs(t *testing.T) { forPaths(t, testCMACZeroAllocs) }

func testCMACZeroAllocs(t *testing.T, asm bool) {
	c, _ := newCMAC(make([]byte, 16), asm)
	msg := make([]byte, 68)
	dst := make([]byte, 0, BlockSize)
	tag := c.Sum(nil, msg)
	if n := testing.AllocsPerRun(100, func() { c.Sum(dst, msg) }); n != 0 {
		t.Errorf("Sum allocates %v times", n)
	}
	if raceEnabled {
		return // sync.Pool drops items at random under the race detector
	}
	if n := testing.AllocsPerRun(100, func() { c.Verify(msg, tag) }); n != 0 {
		t.Errorf("Verify allocates %v times", n)
	}
}

func blockBytes(v block128) []byte {
	b := make([]byte, BlockSize)
	v.store(b)
	return b
}

// TestPadded: the in-place 10* padding is the block a buffer would hold
// after copying b and appending 0x80, for every length under a block.
func TestPadded(t *testing.T) {
	src := make([]byte, BlockSize)
	for trial := range 64 {
		for i := range src {
			src[i] = byte(trial*31 + i*7 + 1)
		}
		for n := range BlockSize {
			var m [BlockSize]byte
			copy(m[:], src[:n])
			m[n] = 0x80
			if got, want := padded(src[:n]), loadBlock(m[:]); got != want {
				t.Fatalf("padded(%x) = %016x%016x, want %016x%016x", src[:n], got.hi, got.lo, want.hi, want.lo)
			}
		}
	}
}
