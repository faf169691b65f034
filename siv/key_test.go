package siv

import (
	"bytes"
	"testing"
)

// A Cipher keyed through a Key computes what one keyed with SetKey does,
// with and without an expanded CTR key, and allocates nothing once the Key
// is expanded.
func TestKeyMatchesSetKey(t *testing.T) { forPaths(t, testKeyMatchesSetKey) }

func testKeyMatchesSetKey(t *testing.T, asm bool) {
	key := bytes.Repeat([]byte{0x5a}, 32)
	for i := range key {
		key[i] ^= byte(i)
	}
	nonce, ad, pt := bytes.Repeat([]byte{1}, 16), []byte("associated data of a header"), []byte("plaintext of some blocks, longer than one")
	var ref Cipher
	if err := ref.setKey(key, asm); err != nil {
		t.Fatal(err)
	}
	want := ref.Seal(nil, nonce, pt, ad)
	for _, ctr := range []bool{true, false} {
		var k Key
		if err := k.setKey(key, ctr, asm); err != nil {
			t.Fatal(err)
		}
		var c Cipher
		c.UseKey(&k)
		if got := c.Seal(nil, nonce, pt, ad); !bytes.Equal(got, want) {
			t.Fatalf("ctr %v: sealed %x, want %x", ctr, got, want)
		}
		c.UseKey(&k)
		if got, err := c.Open(nil, nonce, want, ad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("ctr %v: opened %q, %v", ctr, got, err)
		}
	}
	var k Key
	if err := k.setKey(key[:20], true, asm); err == nil {
		t.Error("a 20-byte key was accepted")
	}
	if err := k.setKey(key, true, asm); err != nil {
		t.Fatal(err)
	}
	var c Cipher
	dst := make([]byte, 0, 128)
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(100, func() {
		c.UseKey(&k)
		c.Seal(dst, nonce, pt, ad)
	}); n != 0 {
		t.Errorf("%v allocations per UseKey and Seal", n)
	}
}
