package symkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
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

func mustKey(t testing.TB, id uint32, typ Type, secret []byte) *Key {
	t.Helper()
	k, err := NewKey(id, typ, secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ntpPacket is a fixed 48-byte NTPv4 client request (LI 0, VN 4, mode 3,
// poll 6, precision -20, transmit timestamp e9c0d4a1.5c28f5c2).
const ntpPacket = "230006ec000000000000000000000000000000000000000000000000" +
	"000000000000000000000000e9c0d4a15c28f5c2"

// TestGolden compares MACs over ntpPacket with values computed independently
// by OpenSSL 3.0 (pkt.bin holds the packet bytes):
//
//	openssl mac -cipher AES-128-CBC -macopt hexkey:2b7e...4f3c -in pkt.bin CMAC
//	openssl mac -cipher AES-256-CBC -macopt hexkey:603d...dff4 -in pkt.bin CMAC
//	(printf timegate-md5-key; cat pkt.bin) | openssl dgst -md5
//	(printf '\x01\x23...\x67'; cat pkt.bin) | openssl dgst -sha1
//	(printf timegate-sha256-key; cat pkt.bin) | openssl dgst -sha256   (and so on)
func TestGolden(t *testing.T) {
	pkt := unhex(t, ntpPacket)
	for _, tc := range []struct {
		typ    Type
		secret []byte
		mac    string
	}{
		{AES128CMAC, unhex(t, "2b7e151628aed2a6abf7158809cf4f3c"), "68ffb1627abe4b72833b4b56c997b6f9"},
		{AES256CMAC, unhex(t, "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"), "5f2aa1c948cfe0c0fc0c971a022199ac"},
		{MD5, []byte("timegate-md5-key"), "7521063ecfa9c0732190674e404ac502"},
		{SHA1, unhex(t, "0123456789abcdef0123456789abcdef01234567"), "4530d0d56a7e08e8d2021827f77811de9ba0b0a2"},
		{SHA224, []byte("timegate-sha224-key"), "0b2978b99b8ab9e06557675af61cf4d587b4348268e92c481a810f66"},
		{SHA256, []byte("timegate-sha256-key"), "db13d857955ed73b24ce88af5a9545aeb069f3a8b79c2c5dd46b1a488048759f"},
		{SHA384, []byte("timegate-sha384-key"), "473973f663da2058d8c8e6ede6cabc3aeee098e2c0d9d290f31011a4ce867087123d5b42e4a9ac9f1556e45ee720d84b"},
		{SHA512, []byte("timegate-sha512-key"), "cce9dd1c7327d9d5b635d07139e47a485876037e677caf21acc937951bfc606bbf3e8f1267893a777904a40de9035a1cc6c8c7ff54e361043927998e31cfdb6c"},
		{SHA3_224, []byte("timegate-sha3-224-key"), "b8b56b845b80a7c03cff5719394025c37597a518aa4fd9ad95558f9e"},
		{SHA3_256, []byte("timegate-sha3-256-key"), "c851ff6c94490dfc313167d47a1e4cc8b115b7f0609c8805b00e24d0289f1be9"},
		{SHA3_384, []byte("timegate-sha3-384-key"), "2ba3d8a0bfb50d09eaf32ee8e79e873737edd87b1032912ac3df5b2e0558ed55eb3c41e4d96c0cc4ce836ac654bc2932"},
		{SHA3_512, []byte("timegate-sha3-512-key"), "e429e2abb892fb91a5fed1466ea9c4f3a8698f278f0cb8d1168789e20c151c6300ee325720cbbec08bc7fb9b2803f57f7e3923cc6d11f8ee6470a4d742c1df6a"},
	} {
		k := mustKey(t, 1, tc.typ, tc.secret)
		mac := unhex(t, tc.mac)
		if got := k.Sum(nil, pkt); !bytes.Equal(got, mac) {
			t.Errorf("%v: Sum = %x, want %x", tc.typ, got, mac)
		}
		if k.Size() != len(mac) {
			t.Errorf("%v: Size = %d, want %d", tc.typ, k.Size(), len(mac))
		}
		if !k.Verify(pkt, mac) {
			t.Errorf("%v: Verify rejected the golden MAC", tc.typ)
		}
		checkTamper(t, k, pkt, mac)
	}
}

// checkTamper flips every bit of the MAC and of the packet in turn, and tries
// every truncation: none may verify, except the NTPv4 truncation of a long
// digest to 20 octets (chrony's and NTPsec's), which must.
func checkTamper(t *testing.T, k *Key, pkt, mac []byte) {
	t.Helper()
	for i := range 8 * len(mac) {
		bad := bytes.Clone(mac)
		bad[i/8] ^= 1 << (i % 8)
		if k.Verify(pkt, bad) {
			t.Fatalf("%v: MAC bit %d flipped verifies", k, i)
		}
	}
	for i := range 8 * len(pkt) {
		bad := bytes.Clone(pkt)
		bad[i/8] ^= 1 << (i % 8)
		if k.Verify(bad, mac) {
			t.Fatalf("%v: packet bit %d flipped verifies", k, i)
		}
	}
	for n := range len(mac) {
		if n == V4MaxDigest {
			if !k.Verify(pkt, mac[:n]) || !bytes.Equal(k.SumTrunc(nil, pkt, n), mac[:n]) {
				t.Fatalf("%v: NTPv4 truncation to %d octets does not verify", k, n)
			}
			continue
		}
		if k.Verify(pkt, mac[:n]) {
			t.Fatalf("%v: %d-byte truncated MAC verifies", k, n)
		}
	}
}

// RFC 8573 §4 is AES-CMAC of RFC 4493 keyed with the raw key: an AES128 key
// holding the RFC 4493 key must reproduce its published tags.
func TestCMACIsRFC4493(t *testing.T) {
	k := mustKey(t, 42, AES128CMAC, unhex(t, "2b7e151628aed2a6abf7158809cf4f3c"))
	msg := unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411")
	for n, tag := range map[int]string{
		0:  "bb1d6929e95937287fa37d129b756746",
		16: "070a16b46b4d4144f79bdd9dd04a287c",
		40: "dfa66747de9ae63030ca32611497c827",
	} {
		if got := hex.EncodeToString(k.Sum(nil, msg[:n])); got != tag {
			t.Errorf("len %d: %s, want %s", n, got, tag)
		}
	}
}

func TestNewKeyChecks(t *testing.T) {
	for _, tc := range []struct {
		id     uint32
		typ    Type
		secret int
		want   error
	}{
		{0, AES128CMAC, 16, ErrKeyID},
		{1, AES128CMAC, 15, ErrKeyLength},
		{1, AES128CMAC, 32, ErrKeyLength},
		{1, AES256CMAC, 16, ErrKeyLength},
		{1, MD5, 0, ErrKeyLength},
		{1, SHA1, 0, ErrKeyLength},
		{1, 0, 16, ErrType},
		{1, lastType + 1, 16, ErrType},
		{1, SHA256, 16, nil},
		{1, AES128CMAC, 16, nil},
		{^uint32(0), AES256CMAC, 32, nil},
		{7, MD5, 1, nil},
		{7, SHA1, MaxSecretLen, nil},
		{7, SHA1, MaxSecretLen + 1, ErrKeyLength},
	} {
		_, err := NewKey(tc.id, tc.typ, make([]byte, tc.secret))
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("NewKey(%d, %v, %d bytes) = %v, want %v", tc.id, tc.typ, tc.secret, err, tc.want)
		}
	}
}

// NewKey copies the secret: the caller may wipe its buffer.
func TestNewKeyCopiesSecret(t *testing.T) {
	secret := []byte("0123456789abcdef")
	k := mustKey(t, 3, AES128CMAC, secret)
	pkt := unhex(t, ntpPacket)
	mac := k.Sum(nil, pkt)
	clear(secret)
	if !k.Verify(pkt, mac) || !bytes.Equal(k.Sum(nil, pkt), mac) {
		t.Fatal("key changed when the caller's secret buffer was cleared")
	}
}

func TestStringHidesSecret(t *testing.T) {
	secret := "TopSecretPassphrase"
	k := mustKey(t, 9, SHA1, []byte(secret))
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		out := fmt.Sprintf(format, k)
		if strings.Contains(out, secret) || strings.Contains(out, hex.EncodeToString([]byte(secret))) {
			t.Errorf("%s printed the secret: %s", format, out)
		}
		if !strings.Contains(out, "9") {
			t.Errorf("%s does not name the key: %s", format, out)
		}
	}
}

func TestTypeProperties(t *testing.T) {
	for _, tc := range []struct {
		typ              Type
		name             string
		macSize, keySize int
		legacy           bool
	}{
		{AES128CMAC, "AES128", 16, 16, false},
		{AES256CMAC, "AES256", 16, 32, false},
		{SHA1, "SHA1", 20, 0, true},
		{MD5, "MD5", 16, 0, true},
		{SHA224, "SHA224", 28, 0, false},
		{SHA256, "SHA256", 32, 0, false},
		{SHA384, "SHA384", 48, 0, false},
		{SHA512, "SHA512", 64, 0, false},
		{SHA3_224, "SHA3-224", 28, 0, false},
		{SHA3_256, "SHA3-256", 32, 0, false},
		{SHA3_384, "SHA3-384", 48, 0, false},
		{SHA3_512, "SHA3-512", 64, 0, false},
	} {
		wantV4, wantPref := min(tc.macSize, 20), uint8(4)
		if tc.macSize > 20 {
			wantPref = 3
		}
		if tc.typ.MACLen(4) != wantV4 || tc.typ.MACLen(3) != tc.macSize || tc.typ.PreferredVersion() != wantPref {
			t.Errorf("%v: MACLen(4) %d MACLen(3) %d PreferredVersion %d", tc.typ, tc.typ.MACLen(4), tc.typ.MACLen(3), tc.typ.PreferredVersion())
		}
		if tc.typ.String() != tc.name || tc.typ.MACSize() != tc.macSize ||
			tc.typ.KeySize() != tc.keySize || tc.typ.Legacy() != tc.legacy {
			t.Errorf("%v: %s %d %d %v", tc.typ, tc.typ, tc.typ.MACSize(), tc.typ.KeySize(), tc.typ.Legacy())
		}
		if got, ok := lookupType(tc.name); !ok || got != tc.typ {
			t.Errorf("lookupType(%q) = %v, %v", tc.name, got, ok)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	pkt := unhex(t, ntpPacket)
	dst := make([]byte, 0, maxMACSize)
	for _, k := range []*Key{
		mustKey(t, 1, AES128CMAC, make([]byte, 16)),
		mustKey(t, 2, AES256CMAC, make([]byte, 32)),
		mustKey(t, 3, SHA1, make([]byte, 20)),
		mustKey(t, 4, MD5, make([]byte, 16)),
		mustKey(t, 5, SHA256, make([]byte, 32)),
		mustKey(t, 6, SHA384, make([]byte, 32)),
		mustKey(t, 7, SHA512, make([]byte, 32)),
		mustKey(t, 8, SHA3_256, make([]byte, 32)),
		mustKey(t, 9, SHA224, make([]byte, 32)),
	} {
		mac := k.Sum(nil, pkt)
		if n := testing.AllocsPerRun(100, func() { k.Sum(dst, pkt) }); n != 0 {
			t.Errorf("%v: Sum allocates %v times", k, n)
		}
		if raceEnabled && k.cmac != nil {
			continue // sync.Pool drops items at random under the race detector
		}
		if n := testing.AllocsPerRun(100, func() { k.Verify(pkt, mac) }); n != 0 {
			t.Errorf("%v: Verify allocates %v times", k, n)
		}
	}
}
