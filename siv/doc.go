// Package siv implements AES-CMAC (RFC 4493) and AES-SIV-CMAC (RFC 5297),
// the mandatory NTS AEAD (AEAD_AES_SIV_CMAC_256, id 15, RFC 8915 §5.1) and the
// MAC of RFC 8573 symmetric-key NTP authentication.
//
// It is our own small implementation because no available Go module was
// fit: the usual one crashes on unaligned buffers and drops empty
// associated data from the S2V vector, which changes the tag.
//
// SIV output layout (RFC 5297 §2.6):
//
//	+----------------------+---------------------------------+
//	| V: synthetic IV (16) | C: CTR(K2, V, P), len(P) octets |
//	+----------------------+---------------------------------+
//
// V = S2V(K1, AD1, ..., ADn, P) authenticates every component and the
// plaintext; V is both the tag and the CTR starting counter. The RFC 5116
// interface used by NTS (RFC 8915 §5.6) maps onto the vector as
// (A, N, P): the associated data A is always the first component, even when
// empty, and the nonce N is the last component before the plaintext
// (RFC 5297 §3). Wycheproof's aead_aes_siv_cmac_test.json, run by the tests,
// fixes that treatment of an empty A: dropping it changes every tag.
//
// Two types implement it. AEAD is for keys that live long and are shared
// (the NTS cookie key, a client's session keys); Cipher is for a key that
// serves one request (an NTS server's C2S and S2C) and splits sealing
// around the last-known part of the associated data, so that an NTS reply
// can read its transmit timestamp after nearly all of the work.
//
// AES has two paths (aes.go). On amd64 with AES-NI and AVX, unless built
// with the purego tag, our own assembly (aes_amd64.s) expands keys into
// round keys held inside the key structs and runs the CMAC chains (up to
// three S2V strings interleaved) and the CTR pass (eight blocks at a time)
// with the CPU's AES instructions. Everywhere else crypto/aes does the
// rounds; it is also the reference every test compares the assembly with.
// Neither path has tables or branches on secrets: a table implementation
// of our own would leak key bits through cache timing.
//
// Memory: on the crypto/aes path any buffer handed to cipher.Block.Encrypt,
// an interface method, escapes to the heap, so no stack buffer can serve as
// AES scratch. Seal and Sum never allocate when dst has room: they use the
// output region itself. AEAD.Open and Verify have no output to borrow and
// take scratch from a per-key sync.Pool, so they allocate only on a key's
// first call. A Cipher carries its scratch inline; on the crypto/aes path
// it allocates the AES key schedules (crypto/aes.NewCipher returns a
// heap-allocated cipher.Block), on the AES-NI path nothing.
package siv
