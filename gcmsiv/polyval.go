package gcmsiv

import (
	"encoding/binary"
	"math/bits"
)

// POLYVAL (RFC 8452 §3): a universal hash over GF(2^128) with the
// polynomial x^128 + x^127 + x^126 + x^121 + 1, little-endian, where
// dot(a, b) = a·b·x^-128. The field multiply is constant time: the
// carry-less 64×64 products are integer multiplies of bit-masked operands
// (BearSSL's ctmul64 technique), with no table lookups indexed by secrets.

// fieldElement is a 128-bit polynomial, lo holding the coefficients of
// x^0..x^63 (the first eight bytes of its little-endian encoding).
type fieldElement struct{ lo, hi uint64 }

func loadElement(b []byte) fieldElement {
	return fieldElement{binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])}
}

func (e fieldElement) put(b []byte) {
	binary.LittleEndian.PutUint64(b, e.lo)
	binary.LittleEndian.PutUint64(b[8:], e.hi)
}

// bmul64 returns the low 64 bits of the carry-less product of x and y. Each
// operand is split into four masks holding every fourth bit, so that no
// integer product of two masked words carries into a bit position that is
// kept (the carries land in the bits the final masks clear).
func bmul64(x, y uint64) uint64 {
	const m0, m1, m2, m3 = 0x1111111111111111, 0x2222222222222222, 0x4444444444444444, 0x8888888888888888
	x0, x1, x2, x3 := x&m0, x&m1, x&m2, x&m3
	y0, y1, y2, y3 := y&m0, y&m1, y&m2, y&m3
	z0 := (x0 * y0) ^ (x1 * y3) ^ (x2 * y2) ^ (x3 * y1)
	z1 := (x0 * y1) ^ (x1 * y0) ^ (x2 * y3) ^ (x3 * y2)
	z2 := (x0 * y2) ^ (x1 * y1) ^ (x2 * y0) ^ (x3 * y3)
	z3 := (x0 * y3) ^ (x1 * y2) ^ (x2 * y1) ^ (x3 * y0)
	return (z0 & m0) | (z1 & m1) | (z2 & m2) | (z3 & m3)
}

// dot returns a·b·x^-128 mod P: a Karatsuba carry-less product (the high
// halves computed on bit-reversed operands), then a Montgomery reduction by
// P, folding the two low words into the high ones.
func dot(a, b fieldElement) fieldElement {
	a0, a1 := a.lo, a.hi
	b0, b1 := b.lo, b.hi
	a0r, a1r := bits.Reverse64(a0), bits.Reverse64(a1)
	b0r, b1r := bits.Reverse64(b0), bits.Reverse64(b1)
	a2, a2r := a0^a1, a0r^a1r
	b2, b2r := b0^b1, b0r^b1r

	z0 := bmul64(b0, a0)
	z1 := bmul64(b1, a1)
	z2 := bmul64(b2, a2)
	z0h := bmul64(b0r, a0r)
	z1h := bmul64(b1r, a1r)
	z2h := bmul64(b2r, a2r)
	z2 ^= z0 ^ z1
	z2h ^= z0h ^ z1h
	z0h = bits.Reverse64(z0h) >> 1
	z1h = bits.Reverse64(z1h) >> 1
	z2h = bits.Reverse64(z2h) >> 1

	v0, v1, v2, v3 := z0, z0h^z2, z1^z2h, z1h
	v2 ^= v0 ^ (v0 >> 1) ^ (v0 >> 2) ^ (v0 >> 7)
	v1 ^= (v0 << 63) ^ (v0 << 62) ^ (v0 << 57)
	v3 ^= v1 ^ (v1 >> 1) ^ (v1 >> 2) ^ (v1 >> 7)
	v2 ^= (v1 << 63) ^ (v1 << 62) ^ (v1 << 57)
	return fieldElement{v2, v3}
}

// polyval accumulates blocks into s under key h: s = (s + X)·h·x^-128 for
// each 16-byte block X of data, the last one zero-padded.
type polyval struct {
	h, s fieldElement
}

func (p *polyval) update(data []byte) {
	for len(data) >= BlockSize {
		x := loadElement(data)
		p.s = dot(fieldElement{p.s.lo ^ x.lo, p.s.hi ^ x.hi}, p.h)
		data = data[BlockSize:]
	}
	if len(data) > 0 {
		var last [BlockSize]byte
		copy(last[:], data)
		p.update(last[:])
	}
}
