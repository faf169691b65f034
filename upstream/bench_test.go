package upstream

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchCandidates returns n candidates, a fifth of them lying by about a second.
func benchCandidates(n int) []Candidate {
	rng := rand.New(rand.NewPCG(1, 2))
	cands := make([]Candidate, n)
	for i := range cands {
		off := ms(rng.Float64() - 0.5)
		if i%5 == 4 {
			off += time.Second
		}
		cands[i] = withJitter(cand(off, ms(5+rng.Float64()*20)), uint64(i+1), ms(0.1+rng.Float64()))
	}
	return cands
}

func BenchmarkSelect(b *testing.B) {
	for _, n := range []int{5, 50} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cands := benchCandidates(n)
			b.ReportAllocs()
			for b.Loop() {
				if sel := Select(t0, cands, SelectOptions{}); !sel.OK() {
					b.Fatal(sel.Reason)
				}
			}
		})
	}
}

func BenchmarkCombine(b *testing.B) {
	for _, n := range []int{5, 50} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cands := benchCandidates(n)
			sel := Select(t0, cands, SelectOptions{})
			b.ReportAllocs()
			for b.Loop() {
				Combine(t0, cands, sel.Truechimers)
			}
		})
	}
}

// BenchmarkMitigate is a whole round: select, cluster, combine.
func BenchmarkMitigate(b *testing.B) {
	for _, n := range []int{5, 50} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cands := benchCandidates(n)
			b.ReportAllocs()
			for b.Loop() {
				if res := Mitigate(t0, cands, SelectOptions{}); !res.OK() {
					b.Fatal(res.Reason)
				}
			}
		})
	}
}

func BenchmarkFilterAdd(b *testing.B) {
	var f Filter
	rng := rand.New(rand.NewPCG(3, 4))
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		f.Add(sample(time.Duration(i)*16*time.Second, ms(rng.Float64()), ms(10+rng.Float64())), 16*time.Second)
	}
}

func BenchmarkSnapshotNow(b *testing.B) {
	c := NewSoftClock(ClockOptions{})
	if err := c.Update(t0, estimate(t0, ms(50))); err != nil {
		b.Fatal(err)
	}
	snap := c.Snapshot()
	sys := t0.Add(10 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		snap.Now(sys)
	}
}
