package symkey

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// A chrony-style file (chrony.keys(5) examples) and an ntpd-style one
// (ntp.keys(5)) must both load, with the secrets each daemon would use.
func TestParseChronyAndNtpdFiles(t *testing.T) {
	chrony := `# chrony example
1 ALongAndRandomPassword
2 MD5 HEX:B028F91EA5C38D06C2E140B26C7F41EC
3 SHA1 HEX:1DC764E0791B11FA67EFC7ECBC4B0D73F68A070C
  ! also a comment
; and this
% and this
10 AES128 HEX:2B7E151628AED2A6ABF7158809CF4F3C
11 AES256 ASCII:0123456789abcdef0123456789abcdef
`
	ntpd := "1 M ntpasciikey # trailing comment\n" +
		"2 MD5 0123456789abcdef0123456789abcdef\n" +
		"3 SHA1 1dc764e0791b11fa67efc7ecbc4b0d73f68a070c\r\n" +
		"4 AES128CMAC 2b7e151628aed2a6abf7158809cf4f3c\n" +
		"5\tm\tshort\n"
	for _, tc := range []struct {
		name string
		data string
		want map[uint32]string // ID → TYPE:hex secret
	}{
		{"chrony.keys", chrony, map[uint32]string{
			1:  "MD5:" + hexOf("ALongAndRandomPassword"),
			2:  "MD5:b028f91ea5c38d06c2e140b26c7f41ec",
			3:  "SHA1:1dc764e0791b11fa67efc7ecbc4b0d73f68a070c",
			10: "AES128:2b7e151628aed2a6abf7158809cf4f3c",
			11: "AES256:" + hexOf("0123456789abcdef0123456789abcdef"),
		}},
		{"ntp.keys", ntpd, map[uint32]string{
			1: "MD5:" + hexOf("ntpasciikey"),
			2: "MD5:0123456789abcdef0123456789abcdef",
			3: "SHA1:1dc764e0791b11fa67efc7ecbc4b0d73f68a070c",
			4: "AES128:2b7e151628aed2a6abf7158809cf4f3c",
			5: "MD5:" + hexOf("short"),
		}},
	} {
		set, warnings, err := Parse(tc.name, []byte(tc.data))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if set.Len() != len(tc.want) {
			t.Errorf("%s: %d keys, want %d", tc.name, set.Len(), len(tc.want))
		}
		for id, want := range tc.want {
			k, ok := set.Lookup(id)
			if !ok {
				t.Errorf("%s: key %d missing", tc.name, id)
				continue
			}
			if got := k.Type().String() + ":" + hexOf(string(k.secret)); got != want {
				t.Errorf("%s: key %d = %s, want %s", tc.name, id, got, want)
			}
		}
		for _, w := range warnings {
			if !strings.HasPrefix(w, tc.name+":") {
				t.Errorf("%s: warning without file:line: %q", tc.name, w)
			}
		}
		if _, ok := set.Lookup(999); ok {
			t.Errorf("%s: found a key that is not there", tc.name)
		}
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for _, c := range []byte(s) {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}

// Every bad line is reported, each with file, line, key and the reason, and
// the set is withheld.
func TestParseErrors(t *testing.T) {
	data := strings.Join([]string{
		"# bad keys",                  // 1
		"1 AES128 HEX:00112233",       // 2
		"7 AES128 ASCII:twelve-bytes", // 3
		"0 MD5 HEX:00",                // 4
		"4294967296 MD5 HEX:00",       // 5
		"12abc MD5 HEX:00",            // 6
		"8 WHIRLPOOL HEX:0011",        // 7
		"9 FOO HEX:0011",              // 8
		"10 MD5 HEX:0",                // 9
		"11 MD5 HEX:zz",               // 10
		"12 MD5 HEX:",                 // 11
		"13 MD5 ASCII:",               // 12
		"14 MD5 key 10.0.0.1",         // 13
		"15",                          // 14
		"16 AES256 HEX:00112233445566778899aabbccddeeff", // 15
		"17 MD5 good-legacy-key",                         // 16
		"17 SHA1 HEX:00112233445566778899",               // 17
		"18 MD5 a\x01b",                                  // 18
	}, "\n")
	set, _, err := Parse("keys.conf", []byte(data))
	if set != nil || err == nil {
		t.Fatalf("Parse = %v, %v; want an error and no set", set, err)
	}
	want := []struct {
		text     string
		sentinel error
	}{
		{"keys.conf:2: key 1: AES128 key must be 16 bytes, got 4", ErrKeyLength},
		{"keys.conf:3: key 7: AES128 key must be 16 bytes, got 12", ErrKeyLength},
		{"keys.conf:4: invalid key ID 0: 0 means no key", ErrKeyID},
		{"keys.conf:5: invalid key ID: larger than 4294967295", ErrKeyID},
		{"keys.conf:6: invalid key ID: must be a decimal number", ErrKeyID},
		{"keys.conf:7: key 8: WHIRLPOOL is not supported", ErrType},
		{"keys.conf:8: key 9: unknown key type (supported: AES128, AES256, SHA1, MD5, SHA224, SHA256", ErrType},
		{"keys.conf:9: key 10: HEX: key must be", ErrEncoding},
		{"keys.conf:10: key 11: HEX: key must be", ErrEncoding},
		{"keys.conf:11: key 12: HEX: key must be", ErrEncoding},
		{"keys.conf:12: key 13: empty ASCII: key", ErrEncoding},
		{"keys.conf:13: want ID [TYPE] KEY, got 4 fields", ErrSyntax},
		{"keys.conf:14: want ID [TYPE] KEY, got 1 field", ErrSyntax},
		{"keys.conf:15: key 16: AES256 key must be 32 bytes, got 16", ErrKeyLength},
		{"keys.conf:17: key 17: duplicate key ID (first defined on line 16)", ErrDuplicate},
		{"keys.conf:18: key 18: control character in ASCII key", ErrEncoding},
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != len(want) {
		t.Fatalf("got errors:\n%v\nwant %d of them", err, len(want))
	}
	for i, e := range joined.Unwrap() {
		if !strings.HasPrefix(e.Error(), want[i].text) {
			t.Errorf("error %d = %q, want prefix %q", i, e, want[i].text)
		}
		if !errors.Is(e, want[i].sentinel) {
			t.Errorf("error %d (%v) is not %v", i, e, want[i].sentinel)
		}
	}
}

func TestParseWarnings(t *testing.T) {
	data := "1 ALongAndRandomPassword\n" + // no type: MD5 assumed, legacy
		"2 SHA1 HEX:0011\n" + // legacy and short
		"3 MD5 0123456789abcdef0123456789abcdef\n" + // bare hex, ambiguous
		"4 AES128 HEX:2b7e151628aed2a6abf7158809cf4f3c\n" + // clean
		"5 SHA256 HEX:0011\n" // short, not legacy
	set, warnings, err := Parse("k", []byte(data))
	if err != nil || set.Len() != 5 {
		t.Fatalf("Parse: %v, %d keys", err, set.Len())
	}
	all := strings.Join(warnings, "\n")
	for _, want := range []string{
		"k:1: key 1: no type given, MD5 assumed",
		"k:1: key 1: MD5 is legacy, use AES128",
		"k:2: key 2: SHA1 is legacy, use AES128",
		"k:2: key 2: key is 2 bytes, shorter than the 80 bits",
		"k:3: key 3: bare key of 32 hex digits read as 16 bytes of hex",
		"k:5: key 5: key is 2 bytes, shorter than the 80 bits",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing warning %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "key 4") || strings.Contains(all, "key 5: SHA256 is legacy") {
		t.Errorf("warning about the AES128 key:\n%s", all)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, data := range []string{"", "\n\n", "# only comments\n  \t\n"} {
		set, warnings, err := Parse("k", []byte(data))
		if err != nil || set.Len() != 0 || len(warnings) != 0 {
			t.Errorf("Parse(%q) = %d keys, %q, %v", data, set.Len(), warnings, err)
		}
	}
}

func TestParseLongLine(t *testing.T) {
	line := "1 MD5 ASCII:" + strings.Repeat("x", maxLineLen)
	if _, _, err := Parse("k", []byte(line)); !errors.Is(err, ErrSyntax) {
		t.Fatalf("Parse(long line) = %v", err)
	}
	ok := "1 MD5 ASCII:" + strings.Repeat("x", maxLineLen-len("1 MD5 ASCII:"))
	if _, _, err := Parse("k", []byte(ok)); !errors.Is(err, ErrKeyLength) {
		t.Fatalf("Parse(%d-byte key) = %v, want ErrKeyLength", len(ok)-12, err)
	}
	longest := "4294967295 AES256 HEX:" + strings.Repeat("ab", MaxSecretLen)
	if len(longest) > maxLineLen {
		t.Fatalf("canonical line of the longest key is %d bytes", len(longest))
	}
	longest = strings.Replace(longest, "AES256", "SHA1", 1)
	if set, _, err := Parse("k", []byte(longest)); err != nil || set.Len() != 1 {
		t.Fatalf("Parse(%d-byte key) = %v", MaxSecretLen, err)
	}
}

func TestSet(t *testing.T) {
	var empty *Set
	if _, ok := empty.Lookup(1); ok || empty.Len() != 0 {
		t.Fatal("nil Set is not empty")
	}
	for range empty.All() {
		t.Fatal("nil Set yields keys")
	}
	a := mustKey(t, 5, MD5, []byte("a"))
	b := mustKey(t, 2, MD5, []byte("b"))
	set, err := NewSet(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for k := range set.All() {
		ids = append(ids, k.ID())
	}
	if len(ids) != 2 || ids[0] != 2 || ids[1] != 5 {
		t.Errorf("All yields %v, want [2 5]", ids)
	}
	if _, err := NewSet(a, mustKey(t, 5, SHA1, []byte("c"))); !errors.Is(err, ErrDuplicate) {
		t.Errorf("NewSet with duplicate ID: %v", err)
	}
	if k, ok := set.Lookup(5); !ok || !bytes.Equal(k.secret, []byte("a")) {
		t.Error("Lookup(5) did not find key 5")
	}
}

// chronyc keygen output loads as is, with the types and key sizes chrony
// chose and only the legacy warnings for SHA1.
func TestParseChronyKeygen(t *testing.T) {
	data, err := os.ReadFile("testdata/chronyc-keygen.keys")
	if err != nil {
		t.Fatal(err)
	}
	set, warnings, err := Parse("chronyc-keygen.keys", data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]struct {
		typ Type
		len int
	}{5: {AES256CMAC, 32}, 6: {SHA1, 20}, 7: {SHA1, 20}, 8: {AES128CMAC, 16}}
	if set.Len() != len(want) {
		t.Fatalf("%d keys, want %d", set.Len(), len(want))
	}
	for id, w := range want {
		k, ok := set.Lookup(id)
		if !ok || k.Type() != w.typ || len(k.secret) != w.len {
			t.Errorf("key %d: %v, want %v with %d bytes", id, k, w.typ, w.len)
		}
	}
	if len(warnings) != 2 {
		t.Errorf("warnings %q, want the two SHA1 legacy ones", warnings)
	}
}

// Messages are logged, so no word that may be part of a secret is echoed,
// whichever position a mistake puts it in.
func TestParseNeverEchoesSecrets(t *testing.T) {
	const secret = "Hunter2Secret"
	for _, line := range []string{
		secret,
		secret + " MD5 x",
		"1 " + secret + " x",
		"1 MD5 " + secret + " extra",
		"1 " + secret + " two words",
		"1 AES128 " + secret,
		"1 AES128 ASCII:" + secret,
		"99999999999" + secret + " MD5 x",
		"1 MD5 " + secret + "\x00",
		"1 MD5 " + secret + "\n1 MD5 " + secret,
	} {
		_, warnings, err := Parse("k", []byte(line))
		if err == nil {
			t.Errorf("Parse(%q) succeeded", line)
			continue
		}
		if out := err.Error() + strings.Join(warnings, ""); strings.Contains(out, "Hunter2") {
			t.Errorf("Parse(%q) echoed the secret: %s", line, out)
		}
	}
}

// Every type chronyc keygen writes loads, with the digest sizes chrony uses;
// only MD5 and SHA1 warn (legacy), nothing fails.
func TestParseChronyKeygenAllTypes(t *testing.T) {
	data, err := os.ReadFile("testdata/chronyc-keygen-all.keys")
	if err != nil {
		t.Fatal(err)
	}
	set, warnings, err := Parse("chronyc-keygen-all.keys", data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]Type{10: MD5, 11: SHA1, 12: SHA256, 13: SHA384, 14: SHA512,
		15: SHA3_224, 16: SHA3_256, 17: SHA3_384, 18: SHA3_512, 19: AES128CMAC, 20: AES256CMAC,
		21: SHA256, 22: MD5}
	if set.Len() != len(want) {
		t.Fatalf("%d keys, want %d", set.Len(), len(want))
	}
	for id, typ := range want {
		if k, ok := set.Lookup(id); !ok || k.Type() != typ {
			t.Errorf("key %d: %v, want %v", id, k, typ)
		}
	}
	if k, _ := set.Lookup(21); len(k.secret) != 32 {
		t.Errorf("key 21 (keygen ... 256) has %d bytes, want 32", len(k.secret))
	}
	for _, w := range warnings {
		if !strings.Contains(w, "legacy") {
			t.Errorf("unexpected warning %q", w)
		}
	}
	if len(warnings) != 3 {
		t.Errorf("warnings %q, want the three MD5/SHA1 legacy ones", warnings)
	}
}

// NTPsec's ntpkeygen output (type "AES", 16 printable characters or 32 hex
// digits) loads unchanged as AES-128-CMAC keys, the ASCII ones byte for byte.
func TestParseNTPsecKeygen(t *testing.T) {
	data, err := os.ReadFile("testdata/ntpsec-1.2.2-ntpkeygen.keys")
	if err != nil {
		t.Fatal(err)
	}
	set, warnings, err := Parse("ntp.keys", data)
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 20 {
		t.Fatalf("%d keys, want 20", set.Len())
	}
	for k := range set.All() {
		if k.Type() != AES128CMAC || len(k.secret) != 16 {
			t.Errorf("%v: %d bytes, want AES128 with 16", k, len(k.secret))
		}
	}
	k1, _ := set.Lookup(1)
	if !bytes.Equal(k1.secret, []byte("z0]Ge$F`Ia|cSqsS")) {
		t.Errorf("key 1 is not its 16 ASCII characters")
	}
	// Keys 11..20 are bare hex, which chrony would read as ASCII: one warning
	// each says so, nothing else warns.
	if len(warnings) != 10 {
		t.Errorf("warnings %q, want the ten bare-hex ones", warnings)
	}
}

// Campaign finding: a keys file of 524,000 bad lines made one 33 MB log
// line. At most maxReported errors (and warnings) are kept, then a count.
func TestParseCapsReportedProblems(t *testing.T) {
	data := bytes.Repeat([]byte("1\n"), 524_000)
	_, _, err := Parse("keys", data)
	if err == nil || !errors.Is(err, ErrSyntax) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	if n := strings.Count(msg, "\n") + 1; n != maxReported+1 || len(msg) > 10_000 ||
		!strings.Contains(msg, fmt.Sprintf("keys: %d more errors not shown", 524_000-maxReported)) {
		t.Fatalf("%d lines, %d bytes, ending %q", n, len(msg), msg[max(0, len(msg)-80):])
	}
	var legacy strings.Builder
	for i := range 200 {
		fmt.Fprintf(&legacy, "%d MD5 HEX:00112233445566778899aabbccddeeff\n", i+1)
	}
	_, warnings, err := Parse("keys", []byte(legacy.String()))
	if err != nil || len(warnings) != maxReported+1 || !strings.Contains(warnings[maxReported], "150 more warnings") {
		t.Fatalf("err %v, %d warnings, last %q", err, len(warnings), warnings[len(warnings)-1])
	}
}
