package gossip

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"sync"
	"time"
)

// NodeID identifies a node: the first 16 bytes of the SHA-256 of its
// Ed25519 public key (NodeIDOf), so that nobody can claim an ID without the
// key. A node creates its key when first started and keeps it in its data
// directory.
type NodeID [16]byte

// NodeIDOf returns the ID of the node whose public key is pub.
func NodeIDOf(pub ed25519.PublicKey) NodeID {
	sum := sha256.Sum256(pub)
	return NodeID(sum[:16])
}

// String returns the ID as 32 lower-case hex digits.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// Rand returns a PCG seeded from id: the default randomness of state
// machines that must be reproducible in tests and simulations. A node
// seeds its own from crypto/rand instead.
func (id NodeID) Rand() *rand.Rand {
	return rand.New(rand.NewPCG(binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])))
}

// IsZero reports whether id is the zero ID, which no node may use.
func (id NodeID) IsZero() bool { return id == NodeID{} }

// ParseNodeID parses 32 hex digits.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	if err := parseHex16(s, id[:]); err != nil {
		return NodeID{}, fmt.Errorf("node ID %q: %w", s, err)
	}
	return id, nil
}

// MessageID identifies a message: the first 16 bytes of a SHA-256 over the
// message's origin, sequence number, creation time, topic and payload (see
// docs/protocol.md). Two different messages have different IDs, and the ID
// of a received message is recomputed, never trusted from the wire. A large
// message has the same kind of ID, over its whole payload and its first
// chunk's sequence number; each of its chunks has its own ID besides.
type MessageID [16]byte

// String returns the ID as 32 lower-case hex digits.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// ParseMessageID parses 32 hex digits.
func ParseMessageID(s string) (MessageID, error) {
	var id MessageID
	if err := parseHex16(s, id[:]); err != nil {
		return MessageID{}, fmt.Errorf("message ID %q: %w", s, err)
	}
	return id, nil
}

func parseHex16(s string, dst []byte) error {
	if len(s) != 32 {
		return errors.New("want 32 hex digits")
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("not hex: %w", err)
	}
	return nil
}

// Message is an application message as the core delivers it.
//
// Payload is shared with the core's propagation cache: it must not be
// modified.
type Message struct {
	ID      MessageID
	Origin  NodeID
	Seq     uint64    // per-origin sequence number, contiguous from the origin's first message
	Created time.Time // set by the origin, millisecond precision
	Topic   string
	Payload []byte
}

// MaxTopicLen is the longest topic, in bytes.
const MaxTopicLen = 255

// ValidateTopic reports whether topic is a valid message topic: one to
// MaxTopicLen bytes of dot-separated, non-empty tokens made of ASCII letters,
// digits, '-', '_' and ':'. The wildcards '*' and '>' belong to subscription
// patterns, not to topics.
func ValidateTopic(topic string) error { return validateTopic(topic) }

func validateTopic[T string | []byte](topic T) error {
	if len(topic) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidTopic)
	}
	if len(topic) > MaxTopicLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidTopic, len(topic), MaxTopicLen)
	}
	tokenLen := 0
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		switch {
		case c == '.':
			if tokenLen == 0 {
				return fmt.Errorf("%w: %q has an empty token", ErrInvalidTopic, topic)
			}
			tokenLen = 0
		case isTopicChar(c):
			tokenLen++
		default:
			return fmt.Errorf("%w: %q has the character %q at byte %d", ErrInvalidTopic, topic, c, i)
		}
	}
	if tokenLen == 0 {
		return fmt.Errorf("%w: %q has an empty token", ErrInvalidTopic, topic)
	}
	return nil
}

func isTopicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == ':'
}

// idDomain separates message IDs from any other SHA-256 use.
const idDomain = "hearsay/message/v1"

// ComputeMessageID computes the ID of a message from its fields.
func ComputeMessageID(origin NodeID, seq uint64, createdMillis int64, topic string, payload []byte) MessageID {
	var h idHasher
	return h.sum(origin, seq, createdMillis, []byte(topic), payload)
}

// hashers lends idHashers: one per core would cost every simulated node
// half a kilobyte, while a core needs one only during a call.
var hashers = sync.Pool{New: func() any { return new(idHasher) }}

// hashMessageID is ComputeMessageID without allocating.
func hashMessageID(origin NodeID, seq uint64, createdMillis int64, topic, payload []byte) MessageID {
	x := hashers.Get().(*idHasher)
	id := x.sum(origin, seq, createdMillis, topic, payload)
	hashers.Put(x)
	return id
}

// idHasher computes message IDs reusing its hash state and scratch buffer,
// so that the core hashes every received message without allocating.
type idHasher struct {
	h       hash.Hash
	scratch []byte
	out     [sha256.Size]byte
}

func (x *idHasher) init() {
	x.h = sha256.New()
	x.scratch = make([]byte, 0, len(idDomain)+16+8+8+1+MaxTopicLen)
}

func (x *idHasher) sum(origin NodeID, seq uint64, createdMillis int64, topic []byte, payload []byte) MessageID {
	if x.h == nil {
		x.init()
	}
	b := append(x.scratch[:0], idDomain...)
	b = append(b, origin[:]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(createdMillis))
	b = append(b, byte(len(topic)))
	b = append(b, topic...)
	x.scratch = b
	x.h.Reset()
	x.h.Write(b)
	x.h.Write(payload)
	var id MessageID
	copy(id[:], x.h.Sum(x.out[:0]))
	return id
}

func timeFromMillis(ms int64) time.Time { return time.UnixMilli(ms) }
