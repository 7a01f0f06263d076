package merkle

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hearsay-io/hearsay/wire"
)

// Defaults of SessionConfig and ResponderConfig.
const (
	DefaultMaxPacketSize   = 1400 // an Ethernet MTU less IP and UDP headers
	DefaultMaxInFlight     = 32
	DefaultRetryTimeout    = 500 * time.Millisecond
	DefaultMaxAttempts     = 10
	DefaultMaxSessionBytes = 1 << 20
	DefaultMaxDifferences  = 1 << 16
)

// SessionConfig configures a Session. Zero values take the defaults written
// beside each field; Rand is required.
type SessionConfig struct {
	// Rand chooses the session's ID, which tells its answers from those of
	// the previous session with the same peer, and the bytes of the
	// hashes its checks are. Required; a session draws two numbers from
	// it, and two more for each further pass.
	Rand *rand.Rand
	// MaxPacketSize bounds every query, and the answers the peer may send,
	// in bytes. From 512 to 65507; it must hold the largest node of the
	// tree's shape (a full leaf or a full inner node). Default 1400.
	MaxPacketSize int
	// HashSize is how many bytes of the roots' SHA-256 travel: 4 to 32.
	// The final check compares the peer's root with the local one with
	// the differences found applied; it misses with odds of
	// 2^-(8·HashSize). Default 8.
	HashSize int
	// CheckSize is how many bytes of each cell's SHA-256 travel as its
	// check: 1 to 7 (one more is used when many differences are
	// expected). A differing cell looks equal with odds 2^-(8·CheckSize);
	// the final check then fails and the session compares again with
	// other bytes of the hashes. Default 2.
	CheckSize int
	// MaxInFlight bounds the queries awaiting an answer. More shortens the
	// session when differences are many; each costs the peer one datagram
	// at once. Default 32.
	MaxInFlight int
	// RetryTimeout is how long a query waits for its answer before it is
	// sent again. Default 500ms.
	RetryTimeout time.Duration
	// MaxAttempts is how many times a query is sent before the session
	// gives up with ErrTimeout: the session ends at the latest
	// MaxAttempts·RetryTimeout after the peer last answered. Default 10,
	// which survives 30% loss each way (a query and its answer both get
	// through with odds 0.49; ten misses in a row have odds 0.1%).
	MaxAttempts int
	// MaxSessionBytes bounds the bytes of the session's queries and of the
	// answers it uses. Comparing 10^6 IDs with 100 differences takes about
	// 4 KB, with 10,000 about 300 KB. A session that runs out returns
	// ErrBudgetExceeded with the differences found so far, deepest cells
	// first, so that a series of sessions converges. Default 1 MiB.
	MaxSessionBytes int
	// MaxDifferences bounds Missing and Extra each, and so the session's
	// memory. Default 65,536 (1 MiB of IDs each).
	MaxDifferences int
}

func (c *SessionConfig) setDefaults() {
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.HashSize == 0 {
		c.HashSize = DefaultHashSize
	}
	if c.CheckSize == 0 {
		c.CheckSize = DefaultCheckSize
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = DefaultRetryTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxSessionBytes == 0 {
		c.MaxSessionBytes = DefaultMaxSessionBytes
	}
	if c.MaxDifferences == 0 {
		c.MaxDifferences = DefaultMaxDifferences
	}
}

// Sizes of the fixed parts of the datagrams, at most.
const (
	maxQueryHead  = wire.HeaderSize + 4 + 10 + 3 + 3 + 3 // ... seq, shape, max answer, item count
	maxAnswerHead = wire.HeaderSize + 4 + 10 + 3 + 3     // ... seq, shape, entry count
)

// maxEntrySize is the largest answer entry of a tree shape.
func maxEntrySize(shape TreeConfig, hashSize int) int {
	inner := 1 + bitmapSize(shape.FanoutBits) + (1<<shape.FanoutBits)*hashSize
	leaf := 3 + shape.LeafSize*16
	return max(inner, leaf)
}

func (c *SessionConfig) validate(shape TreeConfig) error {
	switch {
	case c.Rand == nil:
		return fmt.Errorf("%w: SessionConfig.Rand is required", ErrInvalidConfig)
	case c.MaxPacketSize < wire.MinPacketSize || c.MaxPacketSize > wire.MaxUDPPayload:
		return fmt.Errorf("%w: MaxPacketSize %d out of range %d..%d", ErrInvalidConfig, c.MaxPacketSize, wire.MinPacketSize, wire.MaxUDPPayload)
	case c.HashSize < MinHashSize || c.HashSize > MaxHashSize:
		return fmt.Errorf("%w: HashSize %d out of range %d..%d", ErrInvalidConfig, c.HashSize, MinHashSize, MaxHashSize)
	case c.CheckSize < MinCheckSize || c.CheckSize >= MaxCheckSize:
		return fmt.Errorf("%w: CheckSize %d out of range %d..%d", ErrInvalidConfig, c.CheckSize, MinCheckSize, MaxCheckSize-1)
	case maxAnswerHead+maxEntrySize(shape, c.HashSize) > c.MaxPacketSize:
		return fmt.Errorf("%w: MaxPacketSize %d cannot hold a node of shape %+v with %d-byte hashes", ErrInvalidConfig, c.MaxPacketSize, shape, c.HashSize)
	case c.MaxInFlight < 1:
		return fmt.Errorf("%w: MaxInFlight %d is below 1", ErrInvalidConfig, c.MaxInFlight)
	case c.RetryTimeout <= 0:
		return fmt.Errorf("%w: RetryTimeout %v is not positive", ErrInvalidConfig, c.RetryTimeout)
	case c.MaxAttempts < 1:
		return fmt.Errorf("%w: MaxAttempts %d is below 1", ErrInvalidConfig, c.MaxAttempts)
	case c.MaxSessionBytes < 2*c.MaxPacketSize:
		return fmt.Errorf("%w: MaxSessionBytes %d is below two packets", ErrInvalidConfig, c.MaxSessionBytes)
	case c.MaxDifferences < 1:
		return fmt.Errorf("%w: MaxDifferences %d is below 1", ErrInvalidConfig, c.MaxDifferences)
	}
	return nil
}
