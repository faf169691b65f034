package siv

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// batchCase is one operation of a differential batch: a key, the vector
// (A, N, P), whether it is opened (else sealed) and, for an open, which bit
// of the ciphertext to flip (-1: none).
type batchCase struct {
	key, nonce, ad, p []byte
	open              bool
	flip              int
}

// checkBatchAgrees runs cases through one Batch, on the AES-NI path (asm)
// or the crypto/aes one, and holds every result to the crypto/aes AEAD's
// one-at-a-time answer: the same V ‖ C for a seal; for an open, the
// plaintext, or failure with a zeroed output when a bit was flipped. Tag-
// only opens use a Key without its CTR key, as an NTS server's C2S does.
func checkBatchAgrees(t *testing.T, asm bool, cases []batchCase) {
	t.Helper()
	var b Batch
	outs := make([][]byte, len(cases))
	wants := make([][]byte, len(cases))
	idx := make([]int, len(cases))
	for i, c := range cases {
		ref, err := newSIV(c.key, false)
		if err != nil {
			t.Fatal(err)
		}
		wants[i] = ref.Seal(nil, c.nonce, c.p, c.ad)
		var k Keyed
		if c.open && len(c.p) == 0 {
			kk := new(Key)
			if err := kk.setKey(c.key, false, asm); err != nil {
				t.Fatal(err)
			}
			k = kk
		} else {
			if k, err = newSIV(c.key, asm); err != nil {
				t.Fatal(err)
			}
		}
		if c.open {
			ct := bytes.Clone(wants[i])
			if c.flip >= 0 {
				bit := c.flip % (8 * len(ct))
				ct[bit/8] ^= 1 << (bit % 8)
			}
			outs[i] = bytes.Repeat([]byte{0xff}, len(c.p))
			idx[i] = b.AddOpen(k, outs[i], c.nonce, ct, c.ad)
		} else {
			outs[i] = append(make([]byte, TagSize), c.p...)
			idx[i] = b.AddSeal(k, outs[i], c.nonce, c.ad)
		}
	}
	if b.Len() != len(cases) {
		t.Fatalf("Len %d after %d adds", b.Len(), len(cases))
	}
	b.Run()
	for i, c := range cases {
		switch {
		case !c.open:
			if !bytes.Equal(outs[i], wants[i]) {
				t.Fatalf("op %d of %d (asm %v, key %d, ad %d, p %d): batch seal %x, AEAD %x",
					i, len(cases), asm, len(c.key), len(c.ad), len(c.p), outs[i], wants[i])
			}
		case c.flip < 0:
			if !b.Opened(idx[i]) || !bytes.Equal(outs[i], c.p) {
				t.Fatalf("op %d of %d (asm %v): batch open %v, %x, want %x", i, len(cases), asm, b.Opened(idx[i]), outs[i], c.p)
			}
		default:
			if b.Opened(idx[i]) || !bytes.Equal(outs[i], make([]byte, len(c.p))) {
				t.Fatalf("op %d of %d (asm %v): tampered batch open %v, left %x", i, len(cases), asm, b.Opened(idx[i]), outs[i])
			}
		}
	}
	if b.Len() != 0 || b.ks != (scratchBlocks{}) {
		t.Fatal("Run left keystream or operations behind")
	}
	for i := range b.chains {
		if c := b.chains[i]; c.k != nil || c.x != [BlockSize]byte{} || c.blocks != nil {
			t.Fatalf("Run left chain %d behind", i)
		}
	}
	for i := range b.ops {
		if op := b.ops[i]; op.k != nil || op.fin != [4 * BlockSize]byte{} || op.tag != [TagSize]byte{} {
			t.Fatalf("Run left operation %d's key or blocks behind", i)
		}
	}
}

// batchPaths are the paths a batch runs on here: crypto/aes always, the
// AES-NI lanes where the CPU and build have them.
func batchPaths() []bool {
	if useAsm {
		return []bool{false, true}
	}
	return []bool{false}
}

// TestBatchMatchesAEAD runs random batches of 1..MaxBatch operations:
// mixed key sizes (AES-192 and -256 leave the lanes for the serial chain),
// seals and opens, tampered opens, and the NTS shapes (a 228-octet AD with
// a tag only, a cookie's 4-octet AD and 68-octet plaintext) among lengths
// drawn from 0..600.
func TestBatchMatchesAEAD(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	draw := func() batchCase {
		c := batchCase{key: fill([]int{32, 32, 32, 48, 64}[rng.IntN(5)]), open: rng.IntN(2) == 0, flip: -1}
		switch rng.IntN(4) {
		case 0: // an NTS request's C2S check
			c.nonce, c.ad, c.p, c.open = fill(16), fill(228), nil, true
		case 1: // a cookie
			c.nonce, c.ad, c.p = fill(16), fill(4), fill(68)
		default:
			c.nonce, c.ad, c.p = fill(1+rng.IntN(40)), fill(rng.IntN(maxDiffLen+1)), fill(rng.IntN(maxDiffLen+1))
		}
		if c.open && rng.IntN(3) == 0 {
			c.flip = rng.IntN(1 << 16)
		}
		return c
	}
	for _, asm := range batchPaths() {
		for range 300 {
			cases := make([]batchCase, 1+rng.IntN(MaxBatch))
			for i := range cases {
				cases[i] = draw()
			}
			checkBatchAgrees(t, asm, cases)
		}
		// Every P length 0..40 around the one- and two-block xorend
		// cases, all in one batch with a long-AD chain beside them.
		for n := 0; n <= 40; n += MaxBatch - 1 {
			cases := []batchCase{{key: fill(32), nonce: fill(16), ad: fill(228), open: true, flip: -1}}
			for m := n; m < n+MaxBatch-1; m++ {
				cases = append(cases, batchCase{key: fill(32), nonce: fill(16), ad: fill(m), p: fill(m), flip: -1})
			}
			checkBatchAgrees(t, asm, cases)
		}
	}
}

// TestRunLanesMatchesSerial holds runLanes to the chains run one at a time
// for chain sets with empty chains, chains of one run or two, and more
// chains than lanes.
func TestRunLanesMatchesSerial(t *testing.T) {
	if !useAsm {
		t.Skip("no AES-NI path on this machine or build: the lanes are the serial chain")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	keys := make([]aesKey, 5)
	for i := range keys {
		k := make([]byte, []int{16, 16, 16, 24, 32}[i])
		for j := range k {
			k[j] = byte(rng.Uint32())
		}
		if err := keys[i].set(k, true); err != nil {
			t.Fatal(err)
		}
	}
	for range 500 {
		cs := make([]laneChain, rng.IntN(12))
		for i := range cs {
			cs[i] = laneChain{k: &keys[rng.IntN(len(keys))], blocks: make([]byte, BlockSize*rng.IntN(12))}
			for j := range cs[i].x {
				cs[i].x[j] = byte(rng.Uint32())
			}
			for j := range cs[i].blocks {
				cs[i].blocks[j] = byte(rng.Uint32())
			}
		}
		want := make([]laneChain, len(cs))
		copy(want, cs)
		for i := range want {
			want[i].serial(make([]byte, BlockSize))
		}
		runLanes(cs, make([]byte, BlockSize))
		for i := range cs {
			if cs[i].x != want[i].x {
				t.Fatalf("chain %d of %d: lanes %x, serial %x", i, len(cs), cs[i].x, want[i].x)
			}
		}
	}
}

// FuzzBatchMatchesAEAD is checkBatchAgrees on fuzzed input: four operations
// built from it (a seal, a tag-only open, an open and a tampered open, each
// under its own key) in one batch, on each path.
func FuzzBatchMatchesAEAD(f *testing.F) {
	f.Add([]byte("k"), uint8(0), []byte("0123456789abcdef"), []byte(""), []byte(""), uint16(0))
	f.Add([]byte("key"), uint8(1), []byte{1}, bytes.Repeat([]byte{4}, 228), bytes.Repeat([]byte{5}, 68), uint16(77))
	f.Add([]byte("k2"), uint8(2), bytes.Repeat([]byte{9}, 33), bytes.Repeat([]byte{2}, 84), bytes.Repeat([]byte{3}, 104), uint16(5000))
	f.Fuzz(func(t *testing.T, seed []byte, size uint8, nonce, ad, p []byte, flip uint16) {
		if len(nonce) == 0 {
			return
		}
		nonce, ad, p = nonce[:min(len(nonce), maxDiffLen)], ad[:min(len(ad), maxDiffLen)], p[:min(len(p), maxDiffLen)]
		key := func(i byte) []byte { return fuzzKey(append([]byte{i}, seed...), size+i) }
		cases := []batchCase{
			{key: key(0), nonce: nonce, ad: ad, p: p, flip: -1},
			{key: key(1), nonce: nonce, ad: ad, open: true, flip: -1},
			{key: key(2), nonce: nonce, ad: p, p: ad, open: true, flip: -1},
			{key: key(3), nonce: nonce, ad: ad, p: p, open: true, flip: int(flip)},
		}
		for _, asm := range batchPaths() {
			checkBatchAgrees(t, asm, cases)
		}
	})
}
