//go:build amd64 && !purego

// AES-NI kernels for AES-CMAC and AES-SIV (see aes_amd64.go for why they
// exist). Every instruction that touches key or data is an AES-NI, AVX or
// general-purpose instruction with no table lookup and no branch on a
// secret: the only branches test the round count and the block count,
// which are public. All vector instructions are VEX-encoded, so memory
// operands need no alignment (round keys live in ordinary Go structs,
// which Go aligns to 8 bytes only) and there is no SSE/AVX transition.
//
// Round-key layout: rk holds the 4*(nr+1) words of the AES encryption key
// schedule (FIPS 197 §5.2) as bytes, round key i at rk[16*i:16*i+16].

#include "textflag.h"

// EXPAND_PREFIX sets x to the running prefix xor of its four 32-bit words
// (w0, w0^w1, w0^w1^w2, w0^w1^w2^w3), the part of the AES key schedule that
// does not go through SubWord. tmp is clobbered.
#define EXPAND_PREFIX(x, tmp) \
	VPSLLDQ $4, x, tmp \
	VPXOR   tmp, x, x  \
	VPSLLDQ $4, tmp, tmp \
	VPXOR   tmp, x, x  \
	VPSLLDQ $4, tmp, tmp \
	VPXOR   tmp, x, x

// KEY128 derives the next AES-128 round key in X0 from X0 and writes it at
// off(BX). AESKEYGENASSIST computes RotWord(SubWord(w3)) xor rcon in its
// dword 3; VPSHUFD broadcasts it.
#define KEY128(rcon, off) \
	VAESKEYGENASSIST $rcon, X0, X1 \
	VPSHUFD $0xff, X1, X1 \
	EXPAND_PREFIX(X0, X2) \
	VPXOR   X1, X0, X0 \
	VMOVDQU X0, off(BX)

// KEY192 advances the AES-192 schedule by six words: X0 holds w[i..i+3],
// X3's low half w[i+4..i+5]. The six new words are stored as 24 bytes at
// off(BX), which is how they lie in the schedule: round keys need no
// reshuffling. The upper half of X3 is don't-care.
#define KEY192(rcon, off) \
	VAESKEYGENASSIST $rcon, X3, X1 \
	VPSHUFD $0x55, X1, X1 \
	EXPAND_PREFIX(X0, X2) \
	VPXOR   X1, X0, X0 \
	VPSHUFD $0xff, X0, X1 \
	VPSLLDQ $4, X3, X2 \
	VPXOR   X2, X3, X3 \
	VPXOR   X1, X3, X3 \
	VMOVDQU X0, off(BX) \
	VMOVQ   X3, off+16(BX)

// KEY256A derives the even round key (X0) from X0 and the odd one in X3:
// RotWord(SubWord(w)) xor rcon of X3's last word.
#define KEY256A(rcon, off) \
	VAESKEYGENASSIST $rcon, X3, X1 \
	VPSHUFD $0xff, X1, X1 \
	EXPAND_PREFIX(X0, X2) \
	VPXOR   X1, X0, X0 \
	VMOVDQU X0, off(BX)

// KEY256B derives the odd round key (X3) from X3 and the even one in X0:
// SubWord of X0's last word, no rotation and no rcon (FIPS 197 §5.2,
// Nk = 8). AESKEYGENASSIST's dword 2 is SubWord(w3).
#define KEY256B(off) \
	VAESKEYGENASSIST $0x00, X0, X1 \
	VPSHUFD $0xaa, X1, X1 \
	EXPAND_PREFIX(X3, X2) \
	VPXOR   X1, X3, X3 \
	VMOVDQU X3, off(BX)

// func expandKeyAsm(nr int, key *byte, rk *byte)
TEXT ·expandKeyAsm(SB), NOSPLIT, $0-24
	MOVQ nr+0(FP), CX
	MOVQ key+8(FP), AX
	MOVQ rk+16(FP), BX
	VMOVDQU (AX), X0
	VMOVDQU X0, (BX)
	CMPQ CX, $12
	JB   exp128
	JE   exp192

	VMOVDQU 16(AX), X3
	VMOVDQU X3, 16(BX)
	KEY256A(0x01, 32)
	KEY256B(48)
	KEY256A(0x02, 64)
	KEY256B(80)
	KEY256A(0x04, 96)
	KEY256B(112)
	KEY256A(0x08, 128)
	KEY256B(144)
	KEY256A(0x10, 160)
	KEY256B(176)
	KEY256A(0x20, 192)
	KEY256B(208)
	KEY256A(0x40, 224)
	JMP expdone

exp192:
	VMOVQ   16(AX), X3
	VMOVQ   X3, 16(BX)
	KEY192(0x01, 24)
	KEY192(0x02, 48)
	KEY192(0x04, 72)
	KEY192(0x08, 96)
	KEY192(0x10, 120)
	KEY192(0x20, 144)
	KEY192(0x40, 168)
	// The eighth step needs only its first four words (w48..w51, the
	// last round key): storing its 24 bytes would run past rk[208].
	VAESKEYGENASSIST $0x80, X3, X1
	VPSHUFD $0x55, X1, X1
	EXPAND_PREFIX(X0, X2)
	VPXOR   X1, X0, X0
	VMOVDQU X0, 192(BX)
	JMP expdone

exp128:
	KEY128(0x01, 16)
	KEY128(0x02, 32)
	KEY128(0x04, 48)
	KEY128(0x08, 64)
	KEY128(0x10, 80)
	KEY128(0x20, 96)
	KEY128(0x40, 112)
	KEY128(0x80, 128)
	KEY128(0x1b, 144)
	KEY128(0x36, 160)

expdone:
	// Leave no key material in the vector registers.
	VPXOR X0, X0, X0
	VPXOR X1, X1, X1
	VPXOR X2, X2, X2
	VPXOR X3, X3, X3
	RET

// ENC1 encrypts X0 in place under the schedule at AX, DI = AX + 16*nr;
// CX holds nr, compared with 12 here. The rounds that all key sizes share
// are addressed from the end of the schedule, so the extra rounds of
// AES-192 and -256 come first. AES instructions leave the flags alone.
#define ENC1 \
	VPXOR (AX), X0, X0 \
	CMPQ  CX, $12 \
	JB    6(PC) \
	VAESENC 16(AX), X0, X0 \
	VAESENC 32(AX), X0, X0 \
	JE    3(PC) \
	VAESENC 48(AX), X0, X0 \
	VAESENC 64(AX), X0, X0 \
	VAESENC -144(DI), X0, X0 \
	VAESENC -128(DI), X0, X0 \
	VAESENC -112(DI), X0, X0 \
	VAESENC -96(DI), X0, X0 \
	VAESENC -80(DI), X0, X0 \
	VAESENC -64(DI), X0, X0 \
	VAESENC -48(DI), X0, X0 \
	VAESENC -32(DI), X0, X0 \
	VAESENC -16(DI), X0, X0 \
	VAESENCLAST (DI), X0, X0

// func encryptAsm(nr int, rk *byte, dst *byte, src *byte)
TEXT ·encryptAsm(SB), NOSPLIT, $0-32
	MOVQ nr+0(FP), CX
	MOVQ rk+8(FP), AX
	MOVQ dst+16(FP), DX
	MOVQ src+24(FP), SI
	MOVQ CX, DI
	SHLQ $4, DI
	ADDQ AX, DI
	VMOVDQU (SI), X0
	ENC1
	VMOVDQU X0, (DX)
	RET

// func cbcAsm(nr int, rk *byte, x *byte, src *byte, n int)
//
// The CBC-MAC chain of CMAC: x = AES(x xor src[i]) for n whole blocks.
TEXT ·cbcAsm(SB), NOSPLIT, $0-40
	MOVQ nr+0(FP), CX
	MOVQ rk+8(FP), AX
	MOVQ x+16(FP), DX
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), BX
	MOVQ CX, DI
	SHLQ $4, DI
	ADDQ AX, DI
	VMOVDQU (DX), X0
	TESTQ BX, BX
	JZ    cbcdone

cbcloop:
	VPXOR (SI), X0, X0
	ENC1
	ADDQ $16, SI
	DECQ BX
	JNZ  cbcloop

cbcdone:
	VMOVDQU X0, (DX)
	RET

// ROUND8 applies one middle round to the eight blocks X0..X7.
#define ROUND8(k) \
	VAESENC k, X0, X0 \
	VAESENC k, X1, X1 \
	VAESENC k, X2, X2 \
	VAESENC k, X3, X3 \
	VAESENC k, X4, X4 \
	VAESENC k, X5, X5 \
	VAESENC k, X6, X6 \
	VAESENC k, X7, X7

// COUNTER sets x to the big-endian 128-bit block hi ‖ lo, hi byte-swapped
// in R9 and lo in R10, then increments lo. A 64-bit increment is exact:
// SIV clears bit 63 of the low word (RFC 5297 §2.5), and no slice holds
// 2^63 blocks.
#define COUNTER(x) \
	MOVQ    R10, R11 \
	BSWAPQ  R11 \
	VMOVQ   R9, x \
	VPINSRQ $1, R11, x, x \
	INCQ    R10

// XOR8 xors the eight keystream blocks with src and stores them at dst,
// one block at a time in order: block i is loaded before block i is
// stored, which keeps an in-place Open (dst 16 bytes before src) correct.
#define XOR8 \
	VPXOR   0(SI), X0, X0 \
	VMOVDQU X0, 0(DX) \
	VPXOR   16(SI), X1, X1 \
	VMOVDQU X1, 16(DX) \
	VPXOR   32(SI), X2, X2 \
	VMOVDQU X2, 32(DX) \
	VPXOR   48(SI), X3, X3 \
	VMOVDQU X3, 48(DX) \
	VPXOR   64(SI), X4, X4 \
	VMOVDQU X4, 64(DX) \
	VPXOR   80(SI), X5, X5 \
	VMOVDQU X5, 80(DX) \
	VPXOR   96(SI), X6, X6 \
	VMOVDQU X6, 96(DX) \
	VPXOR   112(SI), X7, X7 \
	VMOVDQU X7, 112(DX)

// func ctrAsm(nr int, rk *byte, hi uint64, lo uint64, dst *byte, src *byte, n int)
//
// The CTR pass of SIV over n whole blocks from counter hi ‖ lo: eight
// independent blocks at a time, so the AES units pipeline them, then one
// at a time for the rest.
TEXT ·ctrAsm(SB), NOSPLIT, $0-56
	MOVQ nr+0(FP), CX
	MOVQ rk+8(FP), AX
	MOVQ hi+16(FP), R9
	BSWAPQ R9
	MOVQ lo+24(FP), R10
	MOVQ dst+32(FP), DX
	MOVQ src+40(FP), SI
	MOVQ n+48(FP), BX
	MOVQ CX, DI
	SHLQ $4, DI
	ADDQ AX, DI
	VMOVDQU (AX), X8

ctr8loop:
	CMPQ BX, $8
	JB   ctr1
	COUNTER(X0)
	COUNTER(X1)
	COUNTER(X2)
	COUNTER(X3)
	COUNTER(X4)
	COUNTER(X5)
	COUNTER(X6)
	COUNTER(X7)
	VPXOR X8, X0, X0
	VPXOR X8, X1, X1
	VPXOR X8, X2, X2
	VPXOR X8, X3, X3
	VPXOR X8, X4, X4
	VPXOR X8, X5, X5
	VPXOR X8, X6, X6
	VPXOR X8, X7, X7
	CMPQ CX, $12
	JB   ctr8mid
	ROUND8(16(AX))
	ROUND8(32(AX))
	JE   ctr8mid
	ROUND8(48(AX))
	ROUND8(64(AX))

ctr8mid:
	ROUND8(-144(DI))
	ROUND8(-128(DI))
	ROUND8(-112(DI))
	ROUND8(-96(DI))
	ROUND8(-80(DI))
	ROUND8(-64(DI))
	ROUND8(-48(DI))
	ROUND8(-32(DI))
	ROUND8(-16(DI))
	VAESENCLAST (DI), X0, X0
	VAESENCLAST (DI), X1, X1
	VAESENCLAST (DI), X2, X2
	VAESENCLAST (DI), X3, X3
	VAESENCLAST (DI), X4, X4
	VAESENCLAST (DI), X5, X5
	VAESENCLAST (DI), X6, X6
	VAESENCLAST (DI), X7, X7
	XOR8
	ADDQ $128, SI
	ADDQ $128, DX
	SUBQ $8, BX
	JMP  ctr8loop

ctr1:
	TESTQ BX, BX
	JZ    ctrdone

ctr1loop:
	COUNTER(X0)
	ENC1
	VPXOR   (SI), X0, X0
	VMOVDQU X0, (DX)
	ADDQ $16, SI
	ADDQ $16, DX
	DECQ BX
	JNZ  ctr1loop

ctrdone:
	VPXOR X8, X8, X8 // round key 0 is the first half of the AES key
	RET

// ROUNDS3 and ROUNDS2 are ENC1 for three (X0..X2) and two (X0, X1)
// independent blocks: their AES rounds overlap in the pipeline, so a
// round of three chains costs about what a round of one does.
#define ROUNDS3(k) \
	VAESENC k, X0, X0 \
	VAESENC k, X1, X1 \
	VAESENC k, X2, X2

#define ENC3 \
	VPXOR (AX), X0, X0 \
	VPXOR (AX), X1, X1 \
	VPXOR (AX), X2, X2 \
	CMPQ  CX, $12 \
	JB    14(PC) \
	ROUNDS3(16(AX)) \
	ROUNDS3(32(AX)) \
	JE    7(PC) \
	ROUNDS3(48(AX)) \
	ROUNDS3(64(AX)) \
	ROUNDS3(-144(DI)) \
	ROUNDS3(-128(DI)) \
	ROUNDS3(-112(DI)) \
	ROUNDS3(-96(DI)) \
	ROUNDS3(-80(DI)) \
	ROUNDS3(-64(DI)) \
	ROUNDS3(-48(DI)) \
	ROUNDS3(-32(DI)) \
	ROUNDS3(-16(DI)) \
	VAESENCLAST (DI), X0, X0 \
	VAESENCLAST (DI), X1, X1 \
	VAESENCLAST (DI), X2, X2

#define ROUNDS2(k) \
	VAESENC k, X0, X0 \
	VAESENC k, X1, X1

#define ENC2 \
	VPXOR (AX), X0, X0 \
	VPXOR (AX), X1, X1 \
	CMPQ  CX, $12 \
	JB    10(PC) \
	ROUNDS2(16(AX)) \
	ROUNDS2(32(AX)) \
	JE    5(PC) \
	ROUNDS2(48(AX)) \
	ROUNDS2(64(AX)) \
	ROUNDS2(-144(DI)) \
	ROUNDS2(-128(DI)) \
	ROUNDS2(-112(DI)) \
	ROUNDS2(-96(DI)) \
	ROUNDS2(-80(DI)) \
	ROUNDS2(-64(DI)) \
	ROUNDS2(-48(DI)) \
	ROUNDS2(-32(DI)) \
	ROUNDS2(-16(DI)) \
	VAESENCLAST (DI), X0, X0 \
	VAESENCLAST (DI), X1, X1

// func cbc3Asm(nr int, rk *byte, x *byte, a *byte, b *byte, c *byte, na int, nb int, nc int)
//
// Three independent CBC-MAC chains, states at x, x+16 and x+32, over na,
// nb and nc whole blocks at a, b and c, with na >= nb >= nc: three at a
// time while all three have blocks, then two, then one. S2V's strings
// (RFC 5297 §2.4) are independent until they are combined, so their
// chains need not wait for each other.
TEXT ·cbc3Asm(SB), NOSPLIT, $0-72
	MOVQ nr+0(FP), CX
	MOVQ rk+8(FP), AX
	MOVQ x+16(FP), DX
	MOVQ a+24(FP), R8
	MOVQ b+32(FP), R9
	MOVQ c+40(FP), R10
	MOVQ na+48(FP), R11
	MOVQ nb+56(FP), R12
	MOVQ nc+64(FP), R13
	MOVQ CX, DI
	SHLQ $4, DI
	ADDQ AX, DI
	VMOVDQU 0(DX), X0
	VMOVDQU 16(DX), X1
	VMOVDQU 32(DX), X2
	SUBQ R12, R11 // blocks for chain a alone
	SUBQ R13, R12 // blocks for chains a and b

	TESTQ R13, R13
	JZ    cbc3two

cbc3loop:
	VPXOR (R8), X0, X0
	VPXOR (R9), X1, X1
	VPXOR (R10), X2, X2
	ENC3
	ADDQ $16, R8
	ADDQ $16, R9
	ADDQ $16, R10
	DECQ R13
	JNZ  cbc3loop

cbc3two:
	TESTQ R12, R12
	JZ    cbc3one

cbc3twoloop:
	VPXOR (R8), X0, X0
	VPXOR (R9), X1, X1
	ENC2
	ADDQ $16, R8
	ADDQ $16, R9
	DECQ R12
	JNZ  cbc3twoloop

cbc3one:
	TESTQ R11, R11
	JZ    cbc3done

cbc3oneloop:
	VPXOR (R8), X0, X0
	ENC1
	ADDQ $16, R8
	DECQ R11
	JNZ  cbc3oneloop

cbc3done:
	VMOVDQU X0, 0(DX)
	VMOVDQU X1, 16(DX)
	VMOVDQU X2, 32(DX)
	RET

// LANE4 applies round key off of each lane's own schedule (R8, R10, R12,
// SI) to the four chains X0..X3. VAESENC takes the round key as a memory
// operand, so four schedules cost no registers.
#define LANE4(off) \
	VAESENC off(R8), X0, X0 \
	VAESENC off(R10), X1, X1 \
	VAESENC off(R12), X2, X2 \
	VAESENC off(SI), X3, X3

// func cbc4Asm(l *[4]lane, n int)
//
// Four independent CBC-MAC chains, each under its own AES-128 schedule
// (lane.rk, 11 round keys) over n whole blocks at lane.src, states in
// lane.x: the chains of different requests (different keys) advance in
// lockstep, so one chain's AES latency hides the others'. The lane
// layout is siv.lane: rk at 0, src at 8, x at 16, 32 octets a lane. The
// kernel writes back the states only, never the advanced src pointers:
// after a chain's last block that pointer is one past its slice, which
// the garbage collector may take for a pointer into the next span (and
// a pointer stored from assembly has no write barrier); the Go side sets
// src again. Only n is a branch condition; the states are cleared from
// the registers.
TEXT ·cbc4Asm(SB), NOSPLIT, $0-16
	MOVQ l+0(FP), DX
	MOVQ n+8(FP), BX
	MOVQ 0(DX), R8
	MOVQ 8(DX), R9
	VMOVDQU 16(DX), X0
	MOVQ 32(DX), R10
	MOVQ 40(DX), R11
	VMOVDQU 48(DX), X1
	MOVQ 64(DX), R12
	MOVQ 72(DX), R13
	VMOVDQU 80(DX), X2
	MOVQ 96(DX), SI
	MOVQ 104(DX), DI
	VMOVDQU 112(DX), X3
	TESTQ BX, BX
	JZ    cbc4done

cbc4loop:
	VPXOR (R9), X0, X0
	VPXOR (R11), X1, X1
	VPXOR (R13), X2, X2
	VPXOR (DI), X3, X3
	VPXOR (R8), X0, X0
	VPXOR (R10), X1, X1
	VPXOR (R12), X2, X2
	VPXOR (SI), X3, X3
	LANE4(16)
	LANE4(32)
	LANE4(48)
	LANE4(64)
	LANE4(80)
	LANE4(96)
	LANE4(112)
	LANE4(128)
	LANE4(144)
	VAESENCLAST 160(R8), X0, X0
	VAESENCLAST 160(R10), X1, X1
	VAESENCLAST 160(R12), X2, X2
	VAESENCLAST 160(SI), X3, X3
	ADDQ $16, R9
	ADDQ $16, R11
	ADDQ $16, R13
	ADDQ $16, DI
	DECQ BX
	JNZ  cbc4loop

cbc4done:
	VMOVDQU X0, 16(DX)
	VMOVDQU X1, 48(DX)
	VMOVDQU X2, 80(DX)
	VMOVDQU X3, 112(DX)
	VPXOR X0, X0, X0
	VPXOR X1, X1, X1
	VPXOR X2, X2, X2
	VPXOR X3, X3, X3
	RET
