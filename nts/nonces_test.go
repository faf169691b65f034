package nts

import (
	"bytes"
	"testing"
)

// TestNonceBufHandsOutEachOctetOnce: a fresh (zero) buffer draws before
// its first use, nonces of any length up to the buffer's come from
// consecutive unused octets across refills, and no two 16-octet nonces of
// a long run are equal (they are crypto/rand's).
func TestNonceBufHandsOutEachOctetOnce(t *testing.T) {
	var n nonceBuf
	seen := map[[16]byte]bool{}
	zero := make([]byte, 16)
	for i := range 10 * nonceBufLen / 16 {
		var p [16]byte
		if k, err := n.Read(p[:]); k != 16 || err != nil {
			t.Fatalf("read %d: %d, %v", i, k, err)
		}
		if bytes.Equal(p[:], zero) || seen[p] {
			t.Fatalf("read %d: nonce %x repeated or zero", i, p)
		}
		seen[p] = true
	}
	// Lengths that do not divide the buffer: a refill never hands out
	// the old remainder's octets again nor returns short.
	for _, l := range []int{12, 1, 500, nonceBufLen, nonceBufLen + 1, 3} {
		p := make([]byte, l)
		if k, err := n.Read(p); k != l || err != nil {
			t.Fatalf("read of %d: %d, %v", l, k, err)
		}
	}
	if n.left < 0 || n.left > nonceBufLen {
		t.Fatalf("left = %d", n.left)
	}
}
