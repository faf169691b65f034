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

// TestUseKeyLeavesNothingBehind: whatever a Cipher did before (keyed with
// SetKey or another Key, a seal prepared and not finished, a reset or
// none), UseKey leaves it exactly as UseKey leaves a new Cipher. UseKey
// skips its wipe when no key was set since the last Reset, which is only
// right if nothing writes a Cipher without a key.
func TestUseKeyLeavesNothingBehind(t *testing.T) { forPaths(t, testUseKeyLeavesNothingBehind) }

func testUseKeyLeavesNothingBehind(t *testing.T, asm bool) {
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	var k1, k2 Key
	if err := k1.setKey(key(1), true, asm); err != nil {
		t.Fatal(err)
	}
	if err := k2.setKey(key(2), false, asm); err != nil {
		t.Fatal(err)
	}
	nonce, ad := bytes.Repeat([]byte{3}, 16), []byte("associated data")
	for name, before := range map[string]func(c *Cipher){
		"new":               func(*Cipher) {},
		"SetKey":            func(c *Cipher) { c.setKey(key(4), asm) },
		"sealed":            func(c *Cipher) { c.UseKey(&k1); c.Seal(nil, nonce, []byte("plaintext over a block"), ad) },
		"prepared":          func(c *Cipher) { c.UseKey(&k1); c.PrepareSeal(make([]byte, TagSize+40), nonce) },
		"reset":             func(c *Cipher) { c.UseKey(&k1); c.Reset() },
		"failed SetKey":     func(c *Cipher) { c.UseKey(&k1); c.setKey(key(5)[:7], asm) },
		"opened, forged":    func(c *Cipher) { c.UseKey(&k1); c.Open(nil, nonce, make([]byte, TagSize+20), ad) },
		"SetKey, then Seal": func(c *Cipher) { c.setKey(key(6), asm); c.Seal(nil, nonce, []byte("x"), ad) },
	} {
		for _, k := range []*Key{&k1, &k2} {
			var got, want Cipher
			before(&got)
			got.UseKey(k)
			want.UseKey(k)
			if got != want {
				t.Errorf("%s, then UseKey: state differs from a new Cipher's", name)
			}
		}
	}
}
