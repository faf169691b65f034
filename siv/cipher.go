package siv

import "crypto/cipher"

// Cipher is AES-SIV-CMAC (RFC 5297) under a key that serves one exchange,
// such as the C2S or S2C key of one NTS request (RFC 8915 §5.6). It computes
// exactly what AEAD does, with the same RFC 5116 mapping (A, N, P).
//
// AEAD suits keys that live long: it is safe for concurrent use and keeps a
// per-key pool of scratch memory. Building one per request would cost that
// pool, the struct and its scratch every time. A Cipher instead carries its
// scratch inline and is reused: SetKey, use, Reset. Kept in memory that
// outlives a call (a pool of the caller's, a struct field) it allocates
// nothing on the AES-NI path, whose round keys live inside it, and on the
// crypto/aes path only the AES key schedules, one per AES key that is used
// (crypto/aes.NewCipher returns a heap-allocated cipher.Block). To keep
// that cost low, K2 is expanded only when CTR needs it: opening a
// ciphertext without encrypted content, the usual NTS request, expands K1
// alone. As a local variable a Cipher escapes to the heap, because its
// scratch may be handed to cipher.Block.Encrypt, an interface method.
//
// PrepareSeal and FinishSeal split sealing around the moment the associated
// data is complete, for a caller that must finish it as late as possible:
// an NTS server's reply header carries the transmit timestamp, which is
// only accurate if little work remains after it is read.
//
// A Cipher is not safe for concurrent use.
type Cipher struct {
	sivKey
	k2    [32]byte // K2 until CTR needs it, then wiped
	k2Len int

	x  [BlockSize]byte // S2V state
	ks scratchBlocks   // a batch of CTR keystream blocks

	// Set by PrepareSeal for FinishSeal.
	pending bool
	outLen  int
	pre     block128 // dbl(dbl(CMAC(zero))) xor CMAC(N): see PrepareSeal
	chain   block128 // CMAC chain over P up to split
	split   int      // where FinishSeal resumes the chain over P

	// keyed: a key was set since the last Reset. Nothing writes a Cipher
	// without a key, so while it is false every field is zero and UseKey
	// need not wipe about 850 octets first (once per NTS reply).
	keyed bool
}

// lateBlocks is how many blocks of the chain over P PrepareSeal leaves to
// FinishSeal on the AES-NI path, which runs them interleaved with the
// CMAC of the associated data at no cost in latency: the AD of an NTS
// reply (header and Unique Identifier field, at least 84 octets, RFC 8915
// §5.3) has five whole blocks before its last, so four ride along free,
// and the work before the transmit timestamp shrinks by as many.
const lateBlocks = 4

var _ cipher.AEAD = (*Cipher)(nil)

// SetKey keys c with K = K1 ‖ K2 of 32, 48 or 64 bytes, as New does, and
// drops any earlier key. c keeps a copy of K2 until CTR first needs it.
func (c *Cipher) SetKey(key []byte) error { return c.setKey(key, useAsm) }

// setKey is SetKey on the AES-NI path (asm) or the crypto/aes one.
func (c *Cipher) setKey(key []byte, asm bool) error {
	c.Reset()
	if err := checkKeySize(key); err != nil {
		return err
	}
	half := len(key) / 2
	if err := c.init(key[:half], asm, c.x[:]); err != nil {
		c.Reset()
		return err
	}
	c.keyed = true
	c.k2Len = copy(c.k2[:], key[half:])
	return nil
}

// Reset forgets the key and wipes everything c holds: subkeys, the copy of
// K2, S2V states and keystream. A pool of Ciphers should Reset each one it
// takes back, so that no key material lingers in recycled memory.
func (c *Cipher) Reset() { *c = Cipher{} }

// NonceSize returns the recommended nonce length, 16 bytes; any length of at
// least 1 byte is accepted.
func (c *Cipher) NonceSize() int { return NonceSize }

// Overhead returns the length of the synthetic IV, 16 bytes.
func (c *Cipher) Overhead() int { return TagSize }

// Seal is AEAD.Seal: it appends V ‖ C to dst, with the same rules on
// overlap, and panics on an empty nonce or a Cipher without a key.
func (c *Cipher) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) == 0 {
		panic("siv: empty nonce")
	}
	ret, out := sliceForAppend(dst, TagSize+len(plaintext))
	comps := [2][]byte{additionalData, nonce}
	checkOverlap(out, plaintext, comps[:])
	copy(out[TagSize:], plaintext) // memmove: correct in place too
	c.PrepareSeal(out, nonce)
	c.FinishSeal(out, additionalData)
	return ret
}

// Open is AEAD.Open: it authenticates and decrypts V ‖ C and appends the
// plaintext to dst; on failure it returns ErrOpen and leaves the output
// region zeroed. It panics on a Cipher without a key.
func (c *Cipher) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) == 0 {
		return nil, ErrNonceSize
	}
	c.mustHaveKey()
	if len(ciphertext) > TagSize {
		c.expandCTR()
	}
	comps := [2][]byte{additionalData, nonce}
	pt, err := c.open(dst, ciphertext, comps[:], c.ks[:])
	clear(c.ks[:]) // keystream and S2V state
	return pt, err
}

// PrepareSeal starts sealing in place the plaintext P = out[TagSize:] with
// nonce, for associated data A that is not complete yet. It does all the
// work that A does not enter: the CMAC of the nonce, the CMAC chain over P
// but its last one or two blocks, and the expansion of K2. FinishSeal(out, A)
// then writes the same V ‖ C as Seal(nil, nonce, P, A) into out, out[:TagSize]
// being the place for V. Between the two calls neither out's length nor P
// may change; the nonce is no longer needed.
//
// This works because S2V (RFC 5297 §2.4) combines its strings linearly: with
// the vector (A, N, P), D = dbl(dbl(CMAC(zero)) xor CMAC(A)) xor CMAC(N), and
// dbl distributes over xor, so D = pre xor dbl(CMAC(A)) with pre computed
// here. For len(P) >= 16 the final CMAC runs over P xorend D, which changes
// only P's last 16 octets: the chain over the blocks before them does not
// depend on D and is computed here as well.
func (c *Cipher) PrepareSeal(out, nonce []byte) {
	if len(nonce) == 0 {
		panic("siv: empty nonce")
	}
	if len(out) < TagSize {
		panic("siv: output shorter than the tag")
	}
	if anyOverlap(out, nonce) {
		panic("siv: invalid buffer overlap")
	}
	c.mustHaveKey()
	p := out[TagSize:]
	if len(p) > 0 {
		c.expandCTR()
	}
	x := c.x[:]
	c.mac.sum(x, nonce)
	c.pre = c.d0.dbl().dbl().xor(loadBlock(x))
	clear(x)
	c.split = 0
	if len(p) >= BlockSize {
		c.split = xorEndStart(len(p))
		if c.mac.aes.nr != 0 {
			c.split = max(0, c.split-lateBlocks*BlockSize)
		}
		c.mac.absorb(x, p[:c.split])
	}
	c.chain = loadBlock(x)
	clear(x)
	c.pending, c.outLen = true, len(out)
}

// FinishSeal completes the seal PrepareSeal began, with associated data
// additionalData, which must not overlap out: it costs the CMAC of the
// associated data, one or two more CMAC blocks and the CTR pass over P.
// It panics without a matching PrepareSeal.
func (c *Cipher) FinishSeal(out, additionalData []byte) {
	if !c.pending || len(out) != c.outLen {
		panic("siv: FinishSeal without a matching PrepareSeal")
	}
	if anyOverlap(out, additionalData) {
		panic("siv: invalid buffer overlap")
	}
	c.pending = false
	p := out[TagSize:]
	x := c.x[:]
	pc := c.chain // the chain over P, once complete up to xorEndStart
	if c.mac.aes.nr != 0 {
		// The CMAC chain of A beside the rest of the chain over P.
		la := lastStart(len(additionalData))
		// Field by field: a composite literal is built aside and copied in
		// 16-octet moves, which stall on its narrower stores (see padded).
		var cs [3]chain
		cs[0].blocks, cs[1].x = additionalData[:la], c.chain
		if len(p) >= BlockSize {
			cs[1].blocks = p[c.split:xorEndStart(len(p))]
		}
		c.mac.aes.cbc3(&cs)
		cs[0].x.store(x)
		c.mac.finish(x, additionalData[la:])
		pc = cs[1].x
	} else {
		c.mac.sum(x, additionalData)
	}
	d := c.pre.xor(loadBlock(x).dbl())
	if len(p) >= BlockSize {
		pc.store(x)
		c.finishXorEnd(x, p, d)
	} else {
		c.lastShort(x, p, d)
	}
	v := loadBlock(x)
	c.xorKeyStream(c.ks[:], v, p, p)
	v.store(out[:TagSize])
	clear(x)
	clear(c.ks[:])
	c.pre, c.chain, c.split = block128{}, block128{}, 0
}

func (c *Cipher) mustHaveKey() {
	if !c.mac.aes.valid() {
		panic("siv: Cipher used without a key")
	}
}

// expandCTR expands K2 on first use and wipes the copy.
func (c *Cipher) expandCTR() {
	if c.ctr.valid() {
		return
	}
	if err := c.ctr.set(c.k2[:c.k2Len], c.asm); err != nil {
		panic(err) // SetKey checked the length
	}
	clear(c.k2[:])
}
