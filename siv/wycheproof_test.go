package siv

import (
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/c2sp/wycheproof"
)

// The Wycheproof vectors come from the module's embedded file system, so the
// test needs no path into the module cache and runs offline.

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
	Flags   []string `json:"flags"`
	Key     hexBytes `json:"key"`
	IV      hexBytes `json:"iv"`
	AAD     hexBytes `json:"aad"`
	Msg     hexBytes `json:"msg"`
	CT      hexBytes `json:"ct"`
	Tag     hexBytes `json:"tag"`
	Result  string   `json:"result"`
}

type wycheFile struct {
	Algorithm     string `json:"algorithm"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []struct {
		KeySize int         `json:"keySize"`
		Tests   []wycheTest `json:"tests"`
	} `json:"testGroups"`
}

// loadWycheproof reads one vector file and returns its tests, checking that
// the count matches the file's own numberOfTests so no group goes unread.
func loadWycheproof(t *testing.T, name string) []wycheTest {
	t.Helper()
	data, err := fs.ReadFile(wycheproof.TestVectors, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	var f wycheFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	var tests []wycheTest
	for _, g := range f.TestGroups {
		tests = append(tests, g.Tests...)
	}
	if len(tests) != f.NumberOfTests || len(tests) == 0 {
		t.Fatalf("%s: read %d tests, file says %d", name, len(tests), f.NumberOfTests)
	}
	return tests
}

// shifted returns a copy of b that starts off inside a larger buffer, so
// that the code under test sees an unaligned address.
func shifted(b []byte, off int) []byte {
	buf := make([]byte, off+len(b)+BlockSize)
	return append(buf[off:off], b...)
}

var offsets = []int{0, 1, 3}

// forPaths runs f on each AES path this machine has: the AES-NI kernels
// (amd64 with AES-NI and AVX, not built purego) and crypto/aes, the
// reference. Every vector and property test goes through both, so the
// assembly is held to the same RFC 5297, RFC 4493 and Wycheproof results.
func forPaths(t *testing.T, f func(t *testing.T, asm bool)) {
	t.Helper()
	if useAsm {
		t.Run("asm", func(t *testing.T) { f(t, true) })
	}
	t.Run("ref", func(t *testing.T) { f(t, false) })
}
