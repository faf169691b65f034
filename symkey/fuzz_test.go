package symkey

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that: an error comes without
// a set and every error line names the file and one package sentinel; an
// accepted set re-serialised as "ID TYPE HEX:secret" parses back to the same
// keys with no warnings except the legacy ones.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"1 ALongAndRandomPassword\n2 MD5 HEX:B028F91EA5C38D06C2E140B26C7F41EC\n",
		"3 SHA1 HEX:1DC764E0791B11FA67EFC7ECBC4B0D73F68A070C\n",
		"10 AES128 HEX:2B7E151628AED2A6ABF7158809CF4F3C\n11 AES256 ASCII:0123456789abcdef0123456789abcdef\n",
		"1 M ntpasciikey # comment\n4 AES128CMAC 2b7e151628aed2a6abf7158809cf4f3c\r\n",
		"# comment\n! c\n; c\n% c\n\t\n",
		"7 AES128 ASCII:twelve-bytes\n0 MD5 x\n8 SHA256 HEX:00\n9 FOO x\n1 MD5 a b c\n",
		"5 MD5 x\n5 SHA1 y\n",
		"4294967295 aes-256 HEX:" + strings.Repeat("ab", 32) + "\n",
		"1 SHA1 " + strings.Repeat("x", MaxSecretLen) + "\n",
		"12 SHA256 HEX:948B8FAD4ABFC974A48C4A6B12DA226550FC3EA3\n15 SHA3-224 HEX:6E35\n14 SHA512 ASCII:x\n",
		" 1 AES z0]Ge$F`Ia|cSqsS\n11 AES 5ac4e3865899ed8979350a4fb7b7b4d6\n3 sha384 k\n4 sha224 0123456789abcdef0123\n",
		"5 TIGER x\n6 sha3_512 y\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, warnings, err := Parse("f.keys", data)
		for _, w := range warnings {
			if !strings.HasPrefix(w, "f.keys:") {
				t.Fatalf("warning without file:line: %q", w)
			}
		}
		if err != nil {
			checkFuzzErrors(t, set, err)
			return
		}
		if set.Len() > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d keys from %d lines", set.Len(), bytes.Count(data, []byte("\n"))+1)
		}
		var out strings.Builder
		for k := range set.All() {
			fmt.Fprintf(&out, "%d %v HEX:%x\n", k.ID(), k.Type(), k.secret)
		}
		again, warnings, err := Parse("again", []byte(out.String()))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out.String(), err)
		}
		for _, w := range warnings {
			if !strings.Contains(w, "legacy") && !strings.Contains(w, "80 bits") {
				t.Fatalf("re-parse warned: %q", w)
			}
		}
		if again.Len() != set.Len() {
			t.Fatalf("re-parse has %d keys, want %d", again.Len(), set.Len())
		}
		for k := range set.All() {
			checkMACLens(t, k)
			k2, ok := again.Lookup(k.ID())
			if !ok || k2.Type() != k.Type() || !bytes.Equal(k2.secret, k.secret) {
				t.Fatalf("key %d did not survive re-serialisation", k.ID())
			}
		}
	})
}

func checkFuzzErrors(t *testing.T, set *Set, err error) {
	if set != nil {
		t.Fatal("Parse returned a set and an error")
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error is not a joined list: %v", err)
	}
	for _, e := range joined.Unwrap() {
		if !strings.HasPrefix(e.Error(), "f.keys:") {
			t.Fatalf("error without file:line: %q", e)
		}
		known := false
		for _, s := range []error{ErrSyntax, ErrKeyID, ErrType, ErrKeyLength, ErrEncoding, ErrDuplicate} {
			known = known || errors.Is(e, s)
		}
		if !known {
			t.Fatalf("error with no sentinel: %v", e)
		}
	}
}

// checkMACLens: every accepted key fits an NTPv4 MAC (at most 20 octets)
// and verifies its own digest in both versions.
func checkMACLens(t *testing.T, k *Key) {
	msg := []byte("a 48-octet stand-in for an NTP header, say.....")
	for _, vn := range []uint8{3, 4} {
		n := k.MACLen(vn)
		if vn == 4 && n > V4MaxDigest {
			t.Fatalf("%v: NTPv4 digest of %d octets", k, n)
		}
		if mac := k.SumTrunc(nil, msg, n); len(mac) != n || !k.Verify(msg, mac) {
			t.Fatalf("%v: v%d digest of %d octets does not verify", k, vn, n)
		}
	}
}
