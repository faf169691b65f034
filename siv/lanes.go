package siv

import "crypto/subtle"

// lane is one chain of cbc4Asm; the kernel reads this layout (rk at 0,
// src at 8, x at 16) and writes back x only: runLanes points src at the
// next block itself, so that no pointer past a slice's end is ever stored.
type lane struct {
	rk  *byte
	src *byte
	x   [BlockSize]byte
}

// laneChain is one CBC-MAC chain for runLanes: its key, its state (as the
// kernel keeps it, big-endian bytes) and the whole blocks it has yet to
// absorb.
type laneChain struct {
	k      *aesKey
	x      [BlockSize]byte
	blocks []byte // a multiple of 16 octets
}

// serial runs the chain alone (any key, either path) with x (16 bytes) as
// its state's memory: on the crypto/aes path the state goes through
// cipher.Block, an interface, so a stack array would move to the heap.
func (c *laneChain) serial(x []byte) {
	copy(x, c.x[:])
	c.k.cbc(x, c.blocks)
	copy(c.x[:], x)
	clear(x)
	c.blocks = nil
}

// runLanes runs every chain of cs over all its blocks. Chains do not
// depend on each other, so on the AES-NI path up to four of them, whatever
// their keys, advance in lockstep through cbc4Asm: a chain of dependent
// AES blocks leaves the AES unit idle most of the time (about 12 ns a block
// against 1.8 ns for independent ones on the development host), and the
// others fill it. Each call advances the lanes by the shortest one's
// remaining blocks; a chain that is done gives its lane to the next. A
// lane without a chain repeats another lane's work, discarded: cheaper
// than a kernel per lane count, as it costs throughput the chains leave
// unused, not latency. Only AES-128 schedules ride in lanes (every NTS
// key: AES-SIV-CMAC-256 is two AES-128 keys); others run alone. Lengths
// and key sizes, never contents, decide every branch. x is 16 bytes of
// scratch.
func runLanes(cs []laneChain, x []byte) {
	var l [4]lane
	var at, left [4]int // each lane's chain and its blocks still to absorb
	active, next := 0, 0
	for {
		for active < len(l) && next < len(cs) {
			c := &cs[next]
			next++
			switch {
			case len(c.blocks) == 0:
			case c.k.nr != 10:
				c.serial(x)
			default:
				at[active], left[active] = next-1, len(c.blocks)/BlockSize
				// Field by field: a composite literal is built on the stack
				// and copied in 16-octet moves, which stall on its 8-octet
				// pointer stores (see padded).
				ln := &l[active]
				ln.rk, ln.src, ln.x = &c.k.rk[0], &c.blocks[0], c.x
				active++
			}
		}
		switch active {
		case 0:
			clear(l[:])
			return
		case 1:
			c := &cs[at[0]]
			c.x, c.blocks = l[0].x, c.blocks[len(c.blocks)-left[0]*BlockSize:]
			c.serial(x)
			active = 0
			continue
		}
		m := left[0]
		for j := 1; j < active; j++ {
			m = min(m, left[j])
		}
		for j := active; j < len(l); j++ {
			l[j] = l[0]
		}
		cbc4Asm(&l, m)
		for j := 0; j < active; {
			if left[j] -= m; left[j] > 0 {
				c := &cs[at[j]]
				l[j].src = &c.blocks[len(c.blocks)-left[j]*BlockSize]
				j++
				continue
			}
			c := &cs[at[j]]
			c.x, c.blocks = l[j].x, nil
			active--
			l[j], at[j], left[j] = l[active], at[active], left[active]
		}
	}
}

// MaxBatch is the most operations one Batch holds.
const MaxBatch = 32

// Keyed is a key a Batch can use: *AEAD or *Key.
type Keyed interface{ keyed() *sivKey }

func (a *AEAD) keyed() *sivKey { return &a.sivKey }
func (k *Key) keyed() *sivKey  { return &k.sivKey }

// Batch runs AES-SIV-CMAC operations (RFC 5297) of different keys side by
// side, for a server that has several independent ones at hand: the
// requests of one receive batch, or one request's C2S check beside the
// cookie it seals. Each result is exactly what AEAD.Seal or AEAD.Open
// gives; only the order of the AES work differs: S2V's CMAC chains
// (associated data, nonce, the plaintext's leading blocks, then the
// plaintext's final blocks) of all operations run as lanes of runLanes.
//
// Only the vector (A, N, P) is supported, as with AEAD and Cipher. A Batch
// holds no key: it points at the callers' keys and buffers until Run
// returns, and wipes its scratch then. It allocates nothing; keep it in
// memory that outlives a call (it is about 2.5 kB). Not safe for
// concurrent use.
type Batch struct {
	ops    [MaxBatch]batchOp
	n      int
	chains [3 * MaxBatch]laneChain
	ks     scratchBlocks
}

type batchOp struct {
	k         *sivKey
	open      bool
	ad, nonce []byte
	out       []byte              // seal: V slot ‖ plaintext; open: plaintext
	tag       [TagSize]byte       // open: V as received
	fin       [4 * BlockSize]byte // final blocks of A and N; P's last one or two
	ok        bool
}

// Len is the number of operations added since the last Run or Reset.
func (b *Batch) Len() int { return b.n }

// AddSeal adds the seal of out[TagSize:] in place: after Run, out holds
// V ‖ C, as Cipher.PrepareSeal's out does. The key must have its CTR key
// (an AEAD, or a Key set with ctr true). Neither nonce nor ad may overlap
// out. It panics when the batch is full, the nonce empty or out shorter
// than a tag.
func (b *Batch) AddSeal(k Keyed, out, nonce, ad []byte) int {
	sk := k.keyed()
	if len(nonce) == 0 || len(out) < TagSize || !sk.ctr.valid() {
		panic("siv: Batch.AddSeal: empty nonce, no V slot, or no CTR key")
	}
	if anyOverlap(out, nonce) || anyOverlap(out, ad) {
		panic("siv: invalid buffer overlap")
	}
	i, op := b.add()
	op.k, op.open, op.ad, op.nonce, op.out = sk, false, ad, nonce, out
	return i
}

// AddOpen adds the opening of ciphertext (V ‖ C) into dst, which must be
// exactly len(ciphertext)-TagSize octets and overlap nothing else. After
// Run, Opened(i) tells whether it authenticated; if not, dst is zeroed.
// A ciphertext longer than a tag needs the key's CTR key (see AddSeal).
// It panics when the batch is full or the arguments break these rules.
func (b *Batch) AddOpen(k Keyed, dst, nonce, ciphertext, ad []byte) int {
	sk := k.keyed()
	if len(nonce) == 0 || len(ciphertext) < TagSize || len(dst) != len(ciphertext)-TagSize ||
		(len(dst) > 0 && !sk.ctr.valid()) {
		panic("siv: Batch.AddOpen: empty nonce, short ciphertext, wrong dst or no CTR key")
	}
	if anyOverlap(dst, ciphertext) || anyOverlap(dst, nonce) || anyOverlap(dst, ad) {
		panic("siv: invalid buffer overlap")
	}
	i, op := b.add()
	op.k, op.open, op.ad, op.nonce, op.out = sk, true, ad, nonce, dst
	copy(op.tag[:], ciphertext)
	if len(dst) > 0 {
		sk.ctrXOR(b.ks[:], ctrStart(loadBlock(op.tag[:])), dst, ciphertext[TagSize:])
	}
	return i
}

// add takes the next operation's slot, which Run left wiped (fin, tag,
// references), filled in place: a batchOp is too large to copy per call.
func (b *Batch) add() (int, *batchOp) {
	if b.n == MaxBatch {
		panic("siv: Batch full")
	}
	b.n++
	op := &b.ops[b.n-1]
	op.ok = false
	return b.n - 1, op
}

// Opened reports whether open operation i authenticated in the last Run.
func (b *Batch) Opened(i int) bool { return b.ops[i].ok }

// Run performs every operation added since the last Run. Afterwards the
// batch is empty again (Opened still answers for the last Run) and holds
// no intermediate value.
//
// S2V (RFC 5297 §2.4) of (A, N, P) runs in three rounds of lanes: the
// strings' whole blocks but the last (A's and N's before their final
// block, P's before the one or two that xorend changes); the final blocks
// of A and N, subkey applied; then P's last blocks, which need D (or for
// a P shorter than a block, the padded block xored with dbl(D)).
func (b *Batch) Run() {
	ops := b.ops[:b.n]
	cs := b.chains[:3*len(ops)]
	x := b.ks[:BlockSize]
	for i := range ops {
		op := &ops[i]
		p := op.body()
		k := &op.k.mac.aes
		// Field by field, as runLanes fills its lanes.
		a, n, pc := &cs[3*i], &cs[3*i+1], &cs[3*i+2]
		a.k, a.x, a.blocks = k, [BlockSize]byte{}, op.ad[:lastStart(len(op.ad))]
		n.k, n.x, n.blocks = k, [BlockSize]byte{}, op.nonce[:lastStart(len(op.nonce))]
		pc.k, pc.x, pc.blocks = k, [BlockSize]byte{}, nil
		if len(p) >= BlockSize {
			pc.blocks = p[:xorEndStart(len(p))]
		}
	}
	runLanes(cs, x)
	for i := range ops {
		op := &ops[i]
		op.k.mac.last(op.ad[lastStart(len(op.ad)):]).store(op.fin[:BlockSize])
		op.k.mac.last(op.nonce[lastStart(len(op.nonce)):]).store(op.fin[BlockSize:])
		cs[3*i].blocks = op.fin[:BlockSize]
		cs[3*i+1].blocks = op.fin[BlockSize : 2*BlockSize]
	}
	runLanes(cs, x)
	for i := range ops {
		op := &ops[i]
		p := op.body()
		d := op.k.d0.dbl().xor(loadBlock(cs[3*i].x[:])).dbl().xor(loadBlock(cs[3*i+1].x[:]))
		tail := op.fin[2*BlockSize:]
		// cs[i] (i <= 3i) is done with: its chain's state went into d.
		c := &cs[i]
		c.k = &op.k.mac.aes
		if len(p) >= BlockSize {
			c.x = cs[3*i+2].x
			n := copy(tail, p[xorEndStart(len(p)):]) // 16..31 octets
			end := tail[n-BlockSize : n]
			loadBlock(end).xor(d).store(end)
			if n == BlockSize {
				op.k.mac.last(tail[:BlockSize]).store(tail[:BlockSize])
				c.blocks = tail[:BlockSize]
			} else {
				op.k.mac.last(tail[BlockSize:n]).store(tail[BlockSize:])
				c.blocks = tail
			}
		} else {
			// T = pad(P) xor dbl(D), a complete block: CMAC uses K1.
			c.x = [BlockSize]byte{}
			padded(p).xor(d.dbl()).xor(op.k.mac.k1).store(tail[:BlockSize])
			c.blocks = tail[:BlockSize]
		}
	}
	runLanes(cs[:len(ops)], x)
	for i := range ops {
		op := &ops[i]
		if op.open {
			op.ok = subtle.ConstantTimeCompare(cs[i].x[:], op.tag[:]) == 1
			if !op.ok {
				clear(op.out)
			}
		} else {
			p := op.body()
			op.k.ctrXOR(b.ks[:], ctrStart(loadBlock(cs[i].x[:])), p, p)
			copy(op.out[:TagSize], cs[i].x[:])
		}
		clear(op.fin[:])
		clear(op.tag[:])
		op.k, op.ad, op.nonce, op.out = nil, nil, nil, nil
	}
	clear(cs)
	clear(b.ks[:])
	b.n = 0
}

// Reset drops the operations added since the last Run without running
// them, and wipes the batch. Opens added already decrypted into their
// dst; the caller must treat those as unauthenticated (and wipe them).
func (b *Batch) Reset() { *b = Batch{} }

// body is the plaintext the operation's S2V runs over.
func (op *batchOp) body() []byte {
	if op.open {
		return op.out
	}
	return op.out[TagSize:]
}
