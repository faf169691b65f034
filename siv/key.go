package siv

// Key is an AES-SIV-CMAC key expanded once, for a caller that uses it with
// many Ciphers: the key of an NTS association (its C2S or S2C) serves
// every request of that client, so a server that keeps the expanded Key
// pays the expansion (on the crypto/aes path also its allocations) once
// per client rather than once per request (see Cipher). A Key is read-only
// after SetKey: any number of Ciphers may use it, one after another or at
// once.
type Key struct {
	sivKey
	k2    [32]byte // K2 when SetKey did not expand it
	k2Len int
	x     [BlockSize]byte // SetKey's scratch: a stack array would escape
}

// SetKey expands K = K1 ‖ K2 of 32, 48 or 64 bytes. With ctr false the CTR
// key K2 is kept but not expanded: a Cipher using the Key then expands it
// itself if it ever needs it (an NTS request verified with C2S usually has
// nothing to decrypt).
func (k *Key) SetKey(key []byte, ctr bool) error { return k.setKey(key, ctr, useAsm) }

// setKey is SetKey on the AES-NI path (asm) or the crypto/aes one.
func (k *Key) setKey(key []byte, ctr, asm bool) error {
	*k = Key{}
	if err := checkKeySize(key); err != nil {
		return err
	}
	half := len(key) / 2
	if err := k.init(key[:half], asm, k.x[:]); err != nil {
		*k = Key{}
		return err
	}
	if !ctr {
		k.k2Len = copy(k.k2[:], key[half:])
		return nil
	}
	if err := k.ctr.set(key[half:], asm); err != nil {
		*k = Key{}
		return err
	}
	return nil
}

// UseKey keys c with an expanded Key, dropping any earlier key, without
// expanding anything: c copies k's round keys (AES-NI path) or shares its
// crypto/aes schedules, and copies its subkeys; Reset wipes the copy.
// k must not change while c uses it.
func (c *Cipher) UseKey(k *Key) {
	if c.keyed {
		c.Reset()
	}
	c.sivKey, c.keyed = k.sivKey, true
	if !c.ctr.valid() {
		c.k2Len = copy(c.k2[:], k.k2[:k.k2Len])
	}
}
