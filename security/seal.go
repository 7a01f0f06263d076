package security

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay-io/hearsay/wire"
)

// Sealed datagram layout (docs/protocol.md):
//
//	0  'H' 'S' version  type|0x80     the plaintext header, high bit of the type set
//	4  key ID (4 bytes, big-endian)
//	8  cipher suite (1 byte: 0 XChaCha20-Poly1305, 1 XAES-256-GCM)
//	9  timestamp, Unix milliseconds (7 bytes, big-endian)
//	16 nonce (24 bytes)
//	40 ciphertext of the plaintext body, then the 16-byte tag
//
// Bytes 0 to 15 are the associated data: the header, key ID, suite and
// timestamp are authenticated but readable, so stale datagrams and those of
// another suite are dropped before any decryption. Before suites existed,
// bytes 8 to 15 were an 8-byte timestamp whose top byte is zero until the
// year 10889: the same bytes as suite 0, so XChaCha20-Poly1305 datagrams are
// unchanged and an older node drops another suite's as stale.
const (
	headerSize     = wire.HeaderSize
	sealedHdrSize  = headerSize + 4 + 8
	nonceSize      = 24
	tagSize        = 16
	sealedBodyFrom = sealedHdrSize + nonceSize
	suiteAt        = headerSize + 4
	timestampMask  = 1<<56 - 1
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
	ErrWrongCipher     = errors.New("security: sealed with another cipher suite (check --cipher on every node)")
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
	case errors.Is(err, ErrWrongCipher):
		return "wrong_cipher"
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
	// Suite seals every datagram; datagrams of another suite are refused
	// with ErrWrongCipher. All nodes of a cluster must agree. Default
	// XChaCha20Poly1305 (the zero value).
	Suite Suite
}

// Sealer seals and opens datagrams with a keyring. It is safe for
// concurrent use.
type Sealer struct {
	ring   *Keyring
	window time.Duration
	suite  Suite

	xaesMu      sync.Mutex
	xaesSenders map[KeyID]*xaesSender      // this sealer's nonce prefix per key
	xaesPrimary atomic.Pointer[xaesSender] // the last used: every Seal but after a rotation, without the lock
	xaesOpened  xaesCache                  // the AEADs of the prefixes opened

	mu      sync.Mutex
	seen    map[[16]byte]struct{}
	queue   []replayEntry // in arrival order, so in expiry order; live from head
	head    int
	maxSeen int
}

// xaesSender is what an AES256GCM sealer seals with under one key: a
// random nonce prefix fixed for the sealer's life, so its derived key is
// computed once, and a counter that makes every nonce under it distinct.
type xaesSender struct {
	key     KeyID
	prefix  [xaesPrefixSize]byte
	salt    [4]byte // random: nonces of two sealers that drew one prefix still differ
	aead    cipher.AEAD
	counter atomic.Uint64
}

// xaesCacheSize bounds the derived AEADs a receiver keeps: one per sender
// and key, so a few per peer.
const xaesCacheSize = 4096

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
	return &Sealer{
		ring: ring, window: cfg.ReplayWindow, suite: cfg.Suite,
		xaesSenders: map[KeyID]*xaesSender{}, xaesOpened: xaesCache{max: xaesCacheSize},
		seen: map[[16]byte]struct{}{}, maxSeen: cfg.ReplayCacheSize,
	}
}

// Suite returns the cipher suite the sealer seals with.
func (s *Sealer) Suite() Suite { return s.suite }

// Keyring returns the sealer's keyring.
func (s *Sealer) Keyring() *Keyring { return s.ring }

// Seal appends to dst the sealed form of datagram, a plaintext datagram with
// its 4-byte header, under the primary key and a fresh random nonce.
func (s *Sealer) Seal(dst, datagram []byte, now time.Time) ([]byte, error) {
	if len(datagram) < headerSize {
		return nil, fmt.Errorf("security: sealing a %d-byte datagram", len(datagram))
	}
	id, key, ok := s.ring.primaryKey()
	if !ok {
		return nil, ErrNoKey
	}
	start := len(dst)
	dst = append(dst, datagram[0], datagram[1], datagram[2], datagram[3]|wire.SealedFlag)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	dst = binary.BigEndian.AppendUint64(dst, uint64(now.UnixMilli())&timestampMask)
	dst[start+suiteAt] = byte(s.suite)
	dst = append(dst, make([]byte, nonceSize)...)
	nonce := dst[start+sealedHdrSize : start+sealedBodyFrom]
	var aead cipher.AEAD
	switch s.suite {
	case AES256GCM:
		snd, err := s.xaesSender(id, key)
		if err != nil {
			return nil, err
		}
		copy(nonce, snd.prefix[:])
		copy(nonce[xaesPrefixSize:], snd.salt[:])
		binary.BigEndian.PutUint64(nonce[xaesPrefixSize+4:], snd.counter.Add(1))
		aead, nonce = snd.aead, nonce[xaesPrefixSize:]
	default:
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("security: nonce: %w", err)
		}
		aead = key.aead
	}
	ad := dst[start : start+sealedHdrSize]
	return aead.Seal(dst, nonce, datagram[headerSize:], ad), nil
}

// xaesSender returns this sealer's AES256GCM state for key id, drawing its
// nonce prefix on first use.
func (s *Sealer) xaesSender(id KeyID, key *ringKey) (*xaesSender, error) {
	if snd := s.xaesPrimary.Load(); snd != nil && snd.key == id {
		return snd, nil
	}
	s.xaesMu.Lock()
	defer s.xaesMu.Unlock()
	if snd, ok := s.xaesSenders[id]; ok {
		s.xaesPrimary.Store(snd)
		return snd, nil
	}
	snd := &xaesSender{key: id}
	if _, err := rand.Read(snd.prefix[:]); err != nil {
		return nil, fmt.Errorf("security: nonce prefix: %w", err)
	}
	if _, err := rand.Read(snd.salt[:]); err != nil {
		return nil, fmt.Errorf("security: nonce prefix: %w", err)
	}
	aead, err := key.xaes.derive(snd.prefix[:])
	if err != nil {
		return nil, err
	}
	snd.aead = aead
	s.xaesSenders[id] = snd
	s.xaesPrimary.Store(snd)
	return snd, nil
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
	if Suite(datagram[suiteAt]) != s.suite {
		return nil, ErrWrongCipher
	}
	ts := int64(binary.BigEndian.Uint64(datagram[8:16]) & timestampMask)
	nowMs := now.UnixMilli()
	if d := nowMs - ts; d > s.window.Milliseconds() || -d > s.window.Milliseconds() {
		return nil, ErrStale
	}
	id := KeyID(binary.BigEndian.Uint32(datagram[4:8]))
	key, ok := s.ring.lookup(id)
	if !ok {
		return nil, ErrKeyNotInstalled
	}
	nonce := datagram[sealedHdrSize:sealedBodyFrom]
	aead, cacheKey, cached := key.aead, xaesCacheKey{}, true
	if s.suite == AES256GCM {
		cacheKey.key = id
		copy(cacheKey.prefix[:], nonce)
		s.xaesMu.Lock()
		aead, cached = s.xaesOpened.get(cacheKey)
		s.xaesMu.Unlock()
		if !cached {
			var err error
			if aead, err = key.xaes.derive(nonce); err != nil {
				return nil, err
			}
		}
		nonce = nonce[xaesPrefixSize:]
	}
	dst = append(dst, datagram[0], datagram[1], datagram[2], datagram[3]&^wire.SealedFlag)
	out, err := aead.Open(dst, nonce, datagram[sealedBodyFrom:], datagram[:sealedHdrSize])
	if err != nil {
		return nil, ErrAuth
	}
	if !cached {
		s.xaesMu.Lock()
		s.xaesOpened.put(cacheKey, aead)
		s.xaesMu.Unlock()
	}
	// The nonce's last 16 bytes name the datagram: random for
	// XChaCha20Poly1305, the sender's salt and counter for AES256GCM.
	var seen [16]byte
	copy(seen[:], datagram[sealedBodyFrom-16:sealedBodyFrom])
	if !s.remember(seen, now) {
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
