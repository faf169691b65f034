package symkey

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Edits keep every other byte of the file: comments, legacy keys, odd spacing.
func TestGenerateRemoveKeepOtherLines(t *testing.T) {
	orig := []byte("# chrony keys\n1 SHA1 HEX:0102030405060708090A0B0C0D0E0F1011121314\n  007 AES128 HEX:000102030405060708090A0B0C0D0E0F") // no final newline
	rnd := bytes.NewReader(bytes.Repeat([]byte{0xab}, 64))
	next, k, err := Generate("k", orig, 0, "aes256", rnd)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != 8 || k.Type != "AES256" || k.Line != "8 AES256 HEX:"+strings.Repeat("AB", 32) {
		t.Fatalf("generated %+v", k)
	}
	if want := string(orig) + "\n" + k.Line + "\n"; string(next) != want {
		t.Fatalf("after gen:\n%q\nwant\n%q", next, want)
	}
	set, _, err := Parse("k", next)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := set.Lookup(8); !ok || got.Type() != AES256CMAC {
		t.Fatalf("key 8 not loadable: %v", got)
	}
	// Key 7 is written "007": removed by number, not by spelling.
	after, err := Remove("k", next, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# chrony keys\n1 SHA1 HEX:0102030405060708090A0B0C0D0E0F1011121314\n" + k.Line + "\n"; string(after) != want {
		t.Fatalf("after remove:\n%q\nwant\n%q", after, want)
	}
}

func TestGenerateRefuses(t *testing.T) {
	data := []byte("5 AES128 HEX:000102030405060708090A0B0C0D0E0F\n")
	rnd := bytes.NewReader(make([]byte, 64))
	if _, _, err := Generate("k", data, 5, "", rnd); !errors.Is(err, ErrKeyExists) {
		t.Errorf("taken ID: %v", err)
	}
	if _, _, err := Generate("k", data, 0, "MD5", rnd); !errors.Is(err, ErrGenType) {
		t.Errorf("legacy type: %v", err)
	}
	if _, _, err := Generate("k", []byte("4294967295 AES128 HEX:000102030405060708090A0B0C0D0E0F\n"), 0, "", rnd); !errors.Is(err, ErrKeyExists) {
		t.Errorf("no ID left above the highest: %v", err)
	}
	if _, _, err := Generate("k", []byte("1 AES128 HEX:00\n"), 0, "", rnd); err == nil {
		t.Error("a file that does not parse was edited")
	}
	if _, _, err := Generate("k", nil, 0, "", bytes.NewReader(nil)); err == nil {
		t.Error("no randomness, yet a key")
	}
	if _, err := Remove("k", data, 6); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("remove absent key: %v", err)
	}
}
