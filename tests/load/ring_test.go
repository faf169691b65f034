package main

import (
	"math/rand/v2"
	"sync"
	"testing"
)

func TestRingMatching(t *testing.T) {
	r, err := NewRing(8)
	if err != nil {
		t.Fatal(err)
	}
	n0 := r.Put(0, 0xdeadbeef00000000, 100)
	n1 := r.Put(1, 0xdeadbeef00000000, 200)
	if n0 == n1 || n0&7 != 0 || n1&7 != 1 {
		t.Fatalf("nonces %#x %#x: must differ and carry the slot in the low bits", n0, n1)
	}
	if _, ok := r.Take(n1 ^ 1<<40); ok {
		t.Fatal("a nonce differing in a random bit matched")
	}
	if sent, ok := r.Take(n1); !ok || sent != 200 {
		t.Fatalf("Take(n1) = %d, %v", sent, ok)
	}
	if _, ok := r.Take(n1); ok {
		t.Fatal("a duplicate reply matched twice")
	}
	if _, ok := r.Take(0); ok {
		t.Fatal("origin 0 matched")
	}
	// Request 8 reuses slot 0: the reply to request 0 is now unmatched.
	n8 := r.Put(8, 0x1111111100000000, 300)
	if _, ok := r.Take(n0); ok {
		t.Fatal("a reply to an overwritten request matched")
	}
	if sent, ok := r.Take(n8); !ok || sent != 300 {
		t.Fatalf("Take(n8) = %d, %v", sent, ok)
	}
	// A random value of zero still gives a non-zero nonce.
	if n := r.Put(16, 0, 1); n == 0 {
		t.Fatal("Put returned nonce 0")
	}
}

func TestRingSizes(t *testing.T) {
	for _, size := range []int{0, 1, 3, 6, 1<<24 + 1, 1 << 25} {
		if _, err := NewRing(size); err == nil {
			t.Errorf("NewRing(%d) accepted", size)
		}
	}
	for _, size := range []int{2, 1024, 1 << 16} {
		if _, err := NewRing(size); err != nil {
			t.Errorf("NewRing(%d): %v", size, err)
		}
	}
}

// TestRingConcurrent: one putter and several takers (as one sender and the
// reader of a socket); every nonce is taken at most once, with its own send
// time. Run with -race.
func TestRingConcurrent(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	r, err := NewRing(64)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	nonces := make(chan [2]uint64, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := map[uint64]bool{}
	for range 3 {
		wg.Go(func() {
			for p := range nonces {
				sent, ok := r.Take(p[0])
				if !ok {
					continue
				}
				mu.Lock()
				if taken[p[0]] {
					t.Errorf("nonce %#x taken twice", p[0])
				}
				taken[p[0]] = true
				mu.Unlock()
				if uint64(sent) != p[1] {
					t.Errorf("nonce %#x: send time %d, want %d", p[0], sent, p[1])
				}
			}
		})
	}
	for seq := range uint64(n) {
		nonce := r.Put(seq, rng.Uint64(), int64(seq))
		nonces <- [2]uint64{nonce, seq}
		if seq%3 == 0 { // a duplicate reply
			nonces <- [2]uint64{nonce, seq}
		}
	}
	close(nonces)
	wg.Wait()
	if len(taken) == 0 {
		t.Fatal("nothing matched")
	}
}

// TestHotPathAllocs: building a request, remembering its nonce, and parsing,
// matching and timing its reply allocate nothing.
func TestHotPathAllocs(t *testing.T) {
	r, err := NewRing(1024)
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{ring: r}
	req := make([]byte, ntpLen)
	BuildRequest(req, 0)
	reply := make([]byte, ntpLen)
	reply[0], reply[offStratum] = 4<<3|4, 2
	spoof := make([]byte, spoofLen)
	var walk SourceWalk
	var seq uint64
	allocs := testing.AllocsPerRun(1000, func() {
		nonce := r.Put(seq, rand.Uint64(), int64(seq))
		putTransmit(req, nonce)
		BuildSpoofed(spoof, walk.Next(), [4]byte{127, 0, 0, 1}, 1, 2, uint16(seq), nonce)
		copy(reply[offOrigin:], req[offTransmit:offTransmit+8])
		w.receive(reply, int64(seq)+1000)
		seq++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
	if w.cnt.Replies.Load() == 0 || w.hist.Count() != w.cnt.Replies.Load() {
		t.Fatalf("replies %d, latencies %d", w.cnt.Replies.Load(), w.hist.Count())
	}
}
