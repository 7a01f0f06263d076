// Package security seals hearsay datagrams: passphrase key derivation
// (Argon2id), a keyring that lets a cluster rotate keys without downtime, and
// authenticated encryption of every datagram (XChaCha20-Poly1305) with
// replay protection. docs/security.md describes the scheme and the rotation
// procedure.
package security

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// KeySize is the size of a cluster key.
const KeySize = 32

// Key is a cluster key: what a passphrase derives to.
type Key [KeySize]byte

// KeyID names a key in the sealed header; it is derived from the key.
type KeyID uint32

func (id KeyID) String() string { return fmt.Sprintf("%08x", uint32(id)) }

// ParseKeyID parses 8 hex digits.
func ParseKeyID(s string) (KeyID, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return 0, fmt.Errorf("key ID %q: want 8 hex digits", s)
	}
	return KeyID(binary.BigEndian.Uint32(b)), nil
}

// ID returns the key's ID: the first four bytes of a domain-separated
// SHA-256 of the key. It reveals nothing usable about the key.
func (k Key) ID() KeyID {
	h := sha256.New()
	h.Write([]byte("hearsay/key-id/v1"))
	h.Write(k[:])
	return KeyID(binary.BigEndian.Uint32(h.Sum(nil)))
}

// KDFParams are the Argon2id parameters.
type KDFParams struct {
	Time      uint32 // passes; default 3
	MemoryKiB uint32 // memory in KiB; default 65536 (64 MiB)
	Threads   uint8  // lanes; default 4
}

// DefaultKDFParams are RFC 9106's second recommended Argon2id setting
// (t=3, m=64 MiB, p=4): strong, and still well under a second on a small
// machine. Every node of a cluster must use the same parameters.
var DefaultKDFParams = KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// ErrEmptyPassphrase is returned for an empty passphrase.
var ErrEmptyPassphrase = errors.New("security: empty passphrase")

// MinPassphraseLen is the shortest passphrase DeriveKey accepts.
const MinPassphraseLen = 12

// DeriveKey derives a cluster key from a passphrase. The salt comes from the
// cluster name, so that the same passphrase gives different keys in
// different clusters while every node of one cluster derives the same key.
func DeriveKey(passphrase []byte, cluster string, p KDFParams) (Key, error) {
	if len(passphrase) == 0 {
		return Key{}, ErrEmptyPassphrase
	}
	if len(passphrase) < MinPassphraseLen {
		return Key{}, fmt.Errorf("security: passphrase of %d bytes, at least %d needed (hearsay keygen makes a strong one)", len(passphrase), MinPassphraseLen)
	}
	if p.Time == 0 {
		p.Time = DefaultKDFParams.Time
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = DefaultKDFParams.MemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = DefaultKDFParams.Threads
	}
	salt := ClusterSalt(cluster)
	var k Key
	copy(k[:], argon2.IDKey(passphrase, salt[:], p.Time, p.MemoryKiB, p.Threads, KeySize))
	return k, nil
}

// ClusterSalt is the Argon2id salt of a cluster: the first 16 bytes of
// SHA-256("hearsay/cluster-salt/v1" || 0x00 || cluster name).
func ClusterSalt(cluster string) [16]byte {
	h := sha256.New()
	h.Write([]byte("hearsay/cluster-salt/v1\x00"))
	h.Write([]byte(cluster))
	var s [16]byte
	copy(s[:], h.Sum(nil))
	return s
}

// NewPassphrase returns a random passphrase with 256 bits of entropy, for
// hearsay keygen.
func NewPassphrase() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("security: random passphrase: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
