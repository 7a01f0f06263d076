package security

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hearsay-io/hearsay/wire"
)

// Sealed datagram layout (docs/protocol.md):
//
//	0  'H' 'S' version  type|0x80     the plaintext header, high bit of the type set
//	4  key ID (4 bytes, big-endian)
//	8  timestamp, Unix milliseconds (8 bytes, big-endian)
//	16 nonce (24 bytes)
//	40 ciphertext of the plaintext body, then the 16-byte Poly1305 tag
//
// Bytes 0 to 15 are the associated data: the header, key ID and timestamp
// are authenticated but readable, so stale datagrams are dropped before any
// decryption.
const (
	headerSize     = wire.HeaderSize
	sealedHdrSize  = headerSize + 4 + 8
	nonceSize      = 24
	tagSize        = 16
	sealedBodyFrom = sealedHdrSize + nonceSize
	// Overhead is what sealing adds to a datagram.
	Overhead = sealedBodyFrom + tagSize - headerSize
)

// Reasons a datagram fails to open; each is a drop counter.
var (
	ErrNotSealed       = errors.New("security: plaintext datagram, but this node requires encryption")
	ErrTruncated       = errors.New("security: sealed datagram truncated")
	ErrKeyNotInstalled = errors.New("security: sealed with a key not in the keyring")
	ErrAuth            = errors.New("security: authentication failed (wrong key or tampered)")
	ErrStale           = errors.New("security: timestamp outside the replay window")
	ErrReplay          = errors.New("security: replayed datagram")
	ErrNoKey           = errors.New("security: keyring is empty")
)

// DropReason maps an Open error to its metrics label.
func DropReason(err error) string {
	switch {
	case errors.Is(err, ErrNotSealed):
		return "plaintext"
	case errors.Is(err, ErrTruncated):
		return "truncated"
	case errors.Is(err, ErrKeyNotInstalled):
		return "unknown_key"
	case errors.Is(err, ErrAuth):
		return "auth_failed"
	case errors.Is(err, ErrStale):
		return "stale"
	case errors.Is(err, ErrReplay):
		return "replay"
	}
	return "other"
}

// SealerConfig configures a Sealer.
type SealerConfig struct {
	// ReplayWindow: a datagram whose timestamp is further than this from the
	// local clock, either way, is dropped as stale. Inside the window a
	// replayed datagram is recognised by its nonce. Default 30s. Nodes'
	// clocks must agree within it.
	ReplayWindow time.Duration
	// ReplayCacheSize bounds the nonces remembered; past it the oldest are
	// forgotten early and their datagrams become replayable for the rest of
	// the window. Only authenticated datagrams enter the cache, so strangers
	// cannot fill it. Default 1<<20 (about 48 MiB at most).
	ReplayCacheSize int
}

// Sealer seals and opens datagrams with a keyring. It is safe for
// concurrent use.
type Sealer struct {
	ring   *Keyring
	window time.Duration

	mu      sync.Mutex
	seen    map[[16]byte]struct{}
	queue   []replayEntry // in arrival order, so in expiry order; live from head
	head    int
	maxSeen int
}

type replayEntry struct {
	nonce   [16]byte
	expires int64 // unix nanoseconds
}

// Defaults of SealerConfig.
const (
	DefaultReplayWindow    = 30 * time.Second
	DefaultReplayCacheSize = 1 << 20
)

// NewSealer returns a sealer using ring.
func NewSealer(ring *Keyring, cfg SealerConfig) *Sealer {
	if cfg.ReplayWindow <= 0 {
		cfg.ReplayWindow = DefaultReplayWindow
	}
	if cfg.ReplayCacheSize <= 0 {
		cfg.ReplayCacheSize = DefaultReplayCacheSize
	}
	return &Sealer{ring: ring, window: cfg.ReplayWindow, seen: map[[16]byte]struct{}{}, maxSeen: cfg.ReplayCacheSize}
}

// Keyring returns the sealer's keyring.
func (s *Sealer) Keyring() *Keyring { return s.ring }

// Seal appends to dst the sealed form of datagram, a plaintext datagram with
// its 4-byte header, under the primary key and a fresh random nonce.
func (s *Sealer) Seal(dst, datagram []byte, now time.Time) ([]byte, error) {
	if len(datagram) < headerSize {
		return nil, fmt.Errorf("security: sealing a %d-byte datagram", len(datagram))
	}
	id, aead, ok := s.ring.primaryKey()
	if !ok {
		return nil, ErrNoKey
	}
	start := len(dst)
	dst = append(dst, datagram[0], datagram[1], datagram[2], datagram[3]|wire.SealedFlag)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	dst = binary.BigEndian.AppendUint64(dst, uint64(now.UnixMilli()))
	dst = append(dst, make([]byte, nonceSize)...)
	nonce := dst[start+sealedHdrSize : start+sealedBodyFrom]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("security: nonce: %w", err)
	}
	ad := dst[start : start+sealedHdrSize]
	return aead.Seal(dst, nonce, datagram[headerSize:], ad), nil
}

// IsSealed reports whether a datagram claims to be sealed.
func IsSealed(datagram []byte) bool {
	return len(datagram) >= headerSize && datagram[3]&wire.SealedFlag != 0
}

// Open checks and decrypts a sealed datagram and appends the plaintext
// datagram (its 4-byte header restored) to dst. Every failure is one of the
// errors above; a datagram that opens once is refused as a replay after.
func (s *Sealer) Open(dst, datagram []byte, now time.Time) ([]byte, error) {
	if !IsSealed(datagram) {
		return nil, ErrNotSealed
	}
	if len(datagram) < sealedBodyFrom+tagSize {
		return nil, ErrTruncated
	}
	ts := int64(binary.BigEndian.Uint64(datagram[8:16]))
	nowMs := now.UnixMilli()
	if d := nowMs - ts; d > s.window.Milliseconds() || -d > s.window.Milliseconds() {
		return nil, ErrStale
	}
	aead, ok := s.ring.lookup(KeyID(binary.BigEndian.Uint32(datagram[4:8])))
	if !ok {
		return nil, ErrKeyNotInstalled
	}
	dst = append(dst, datagram[0], datagram[1], datagram[2], datagram[3]&^wire.SealedFlag)
	nonce := datagram[sealedHdrSize:sealedBodyFrom]
	out, err := aead.Open(dst, nonce, datagram[sealedBodyFrom:], datagram[:sealedHdrSize])
	if err != nil {
		return nil, ErrAuth
	}
	var key [16]byte
	copy(key[:], nonce)
	if !s.remember(key, now) {
		return nil, ErrReplay
	}
	return out, nil
}

// remember records a nonce; it reports false if it was already there.
func (s *Sealer) remember(nonce [16]byte, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	nowNs := now.UnixNano()
	// Forget nonces whose datagrams can no longer pass the window check (a
	// datagram accepted now has a timestamp of at most now+window and stays
	// acceptable until that plus window), and the oldest when full.
	for s.head < len(s.queue) {
		e := s.queue[s.head]
		if e.expires > nowNs && len(s.queue)-s.head < s.maxSeen {
			break
		}
		delete(s.seen, e.nonce)
		s.head++
	}
	if s.head > 1024 && 2*s.head > len(s.queue) {
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue, s.head = s.queue[:n], 0
	}
	if _, dup := s.seen[nonce]; dup {
		return false
	}
	s.seen[nonce] = struct{}{}
	s.queue = append(s.queue, replayEntry{nonce: nonce, expires: nowNs + 2*int64(s.window)})
	return true
}
