//go:build amd64 && !purego

package siv

import "golang.org/x/sys/cpu"

// useAsm reports whether this CPU runs the AES-NI kernels of aes_amd64.s
// (AES-NI for the rounds and key expansion, AVX for VEX encoding, which
// lets round keys sit unaligned in ordinary structs). It is set once at
// program start from CPUID and only read afterwards: package-level, but
// not mutable state.
var useAsm = cpu.X86.HasAES && cpu.X86.HasAVX

// expandKeyAsm writes the encryption key schedule of the 16-, 24- or
// 32-byte key (nr = 10, 12, 14 rounds) to rk, 16*(nr+1) bytes.
//
//go:noescape
func expandKeyAsm(nr int, key *byte, rk *byte)

// encryptAsm encrypts the block src into dst (which may be src).
//
//go:noescape
func encryptAsm(nr int, rk *byte, dst, src *byte)

// cbcAsm sets the 16-byte x to the CBC-MAC chain x = E(x xor m) over the n
// whole blocks at src.
//
//go:noescape
func cbcAsm(nr int, rk *byte, x, src *byte, n int)

// ctrAsm xors n whole blocks of src with the keystream E(hi ‖ lo),
// E(hi ‖ lo+1), ... into dst; dst is src or starts before it.
//
//go:noescape
func ctrAsm(nr int, rk *byte, hi, lo uint64, dst, src *byte, n int)

// cbc3Asm runs three independent CBC-MAC chains, states at x, x+16 and
// x+32, over na >= nb >= nc whole blocks at a, b and c.
//
//go:noescape
func cbc3Asm(nr int, rk *byte, x, a, b, c *byte, na, nb, nc int)

// cbc4Asm advances four CBC-MAC chains, each under its own AES-128
// schedule, by n whole blocks each (see lanes.go).
//
//go:noescape
func cbc4Asm(l *[4]lane, n int)
