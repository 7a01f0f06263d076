package security

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
)

// XAES-256-GCM (c2sp.org/XAES-256-GCM) turns a 24-byte nonce into a key
// derived from the first 12 bytes and an AES-256-GCM nonce of the last 12.
// A sender keeps the first 12 bytes for the life of its Sealer and counts in
// the last 12, so it derives once, and a receiver derives once per sender
// and caches the result (xaesCache).

// xaesPrefixSize is the part of the nonce the key is derived from.
const xaesPrefixSize = 12

// xaesRoot is a cluster key ready to derive from: its AES-256 block cipher
// and the CMAC subkey K1.
type xaesRoot struct {
	block cipher.Block
	k1    [aes.BlockSize]byte
}

func newXAESRoot(k Key) (*xaesRoot, error) {
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	r := &xaesRoot{block: block}
	var l [aes.BlockSize]byte
	block.Encrypt(l[:], l[:])
	// K1 = L doubled in GF(2^128), as CMAC's first subkey.
	carry := l[0] >> 7
	for i := 0; i < aes.BlockSize-1; i++ {
		r.k1[i] = l[i]<<1 | l[i+1]>>7
	}
	r.k1[aes.BlockSize-1] = l[aes.BlockSize-1] << 1
	r.k1[aes.BlockSize-1] ^= 0x87 * carry
	return r, nil
}

// derive returns the AES-256-GCM AEAD of the nonces that begin with prefix.
func (r *xaesRoot) derive(prefix []byte) (cipher.AEAD, error) {
	var kx [32]byte
	for i, half := range [2][]byte{kx[:16], kx[16:]} {
		m := [aes.BlockSize]byte{0, byte(i + 1), 'X', 0}
		copy(m[4:], prefix[:xaesPrefixSize])
		for j := range m {
			m[j] ^= r.k1[j]
		}
		r.block.Encrypt(half, m[:])
	}
	block, err := aes.NewCipher(kx[:])
	if err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	return cipher.NewGCM(block)
}

// xaesCache keeps the AEADs derived for the prefixes seen, so a receiver
// derives once per sender, not once per datagram. Only prefixes of
// datagrams that authenticated enter it, so strangers cannot fill it; past
// its size an arbitrary entry is forgotten (and derived again if needed).
type xaesCache struct {
	max     int
	entries map[xaesCacheKey]cipher.AEAD
}

type xaesCacheKey struct {
	key    KeyID
	prefix [xaesPrefixSize]byte
}

func (c *xaesCache) get(k xaesCacheKey) (cipher.AEAD, bool) {
	a, ok := c.entries[k]
	return a, ok
}

func (c *xaesCache) put(k xaesCacheKey, a cipher.AEAD) {
	if c.entries == nil {
		c.entries = make(map[xaesCacheKey]cipher.AEAD)
	}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for old := range c.entries {
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = a
}
