package dht

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/wire"
)

// Config configures a Table. Zero values take the defaults written beside
// each field; Self is required.
type Config struct {
	// Self is this node's ID: its place in the ID space. Required.
	Self gossip.NodeID
	// SelfAddr is this node's gossip address as others reach it. Contacts
	// and bootstrap addresses equal to it are ignored. Default: none.
	SelfAddr netip.AddrPort
	// Rand is the only source of randomness: request IDs, lookup targets.
	// Request IDs are what keeps strangers from forging answers, so a node
	// seeds it from crypto/rand. Default: a PCG seeded from Self, for
	// reproducible tests.
	Rand *rand.Rand

	// K is the bucket size, the number of contacts a lookup returns and the
	// most a NODES answer carries. 1 to 32. Default 16.
	K int
	// Alpha is the number of FIND_NODE requests a lookup keeps in flight.
	// 1 to 16. Default 3.
	Alpha int
	// MaxLookups bounds the lookups running at once; more wait their turn.
	// Default 4.
	MaxLookups int
	// RequestTimeout is how long an answer is awaited. Default 1s.
	RequestTimeout time.Duration
	// RefreshInterval: a bucket that no lookup went through for this long
	// gets a lookup of a random ID in its range. Default 1m.
	RefreshInterval time.Duration
	// PingInterval: a contact (in the table or the sample pool) that has not
	// answered anything for this long is pinged. Default 30s.
	PingInterval time.Duration
	// FailLimit is the number of consecutive unanswered requests after which
	// a contact is evicted. From its first unanswered request until it
	// answers again, a contact is neither given to gossip nor to other
	// nodes. A table contact is replaced at its first unanswered request if
	// its bucket has a replacement waiting (classic Kademlia). Default 3.
	FailLimit int
	// Bootstrap are addresses to join through (--join): other nodes' gossip
	// addresses. Their IDs are learnt from their answers. Default: none;
	// the node then waits for others to contact it.
	Bootstrap []netip.AddrPort

	// SamplePoolSize is the number of contacts, spread uniformly over the
	// whole network, that gossip peers are sampled from (see the package
	// documentation). -1 disables the pool: gossip then samples the table,
	// which is skewed toward this node's own region of the ID space. At most
	// 10,000. Default 128.
	SamplePoolSize int
	// SampleInterval is how often, once the pool is full, one region of the
	// ID space is looked up to renew it. Default 10s.
	SampleInterval time.Duration

	// MaxPacketSize bounds every datagram the table sends, in bytes.
	// Default 1348: 1400 less the sealing overhead, as the gossip core.
	MaxPacketSize int
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig(self gossip.NodeID, selfAddr netip.AddrPort, bootstrap []netip.AddrPort) Config {
	c := Config{Self: self, SelfAddr: selfAddr, Bootstrap: bootstrap}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.K == 0 {
		c.K = 16
	}
	if c.Alpha == 0 {
		c.Alpha = 3
	}
	if c.MaxLookups == 0 {
		c.MaxLookups = 4
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = time.Second
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = time.Minute
	}
	if c.PingInterval == 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.FailLimit == 0 {
		c.FailLimit = 3
	}
	if c.SamplePoolSize == 0 {
		c.SamplePoolSize = 128
	}
	if c.SampleInterval == 0 {
		c.SampleInterval = 10 * time.Second
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = 1400 - security.Overhead
	}
	if c.Rand == nil {
		c.Rand = c.Self.Rand()
	}
	c.SelfAddr = unmap(c.SelfAddr)
	c.Bootstrap = append([]netip.AddrPort(nil), c.Bootstrap...) // the caller may reuse its slice
	for i, b := range c.Bootstrap {
		c.Bootstrap[i] = unmap(b)
	}
}

func (c *Config) validate() error {
	switch {
	case c.Self.IsZero():
		return errors.New("dht: Config.Self is required")
	case c.K < 1 || c.K > MaxNodesPerPacket:
		return fmt.Errorf("dht: K %d out of range 1..%d", c.K, MaxNodesPerPacket)
	case c.Alpha < 1 || c.Alpha > 16:
		return fmt.Errorf("dht: Alpha %d out of range 1..16", c.Alpha)
	case c.MaxLookups < 1:
		return fmt.Errorf("dht: MaxLookups %d is below 1", c.MaxLookups)
	case c.RequestTimeout < time.Millisecond:
		return fmt.Errorf("dht: RequestTimeout %v is below 1ms", c.RequestTimeout)
	case c.RefreshInterval < c.RequestTimeout:
		return fmt.Errorf("dht: RefreshInterval %v is below RequestTimeout %v", c.RefreshInterval, c.RequestTimeout)
	case c.PingInterval < c.RequestTimeout:
		return fmt.Errorf("dht: PingInterval %v is below RequestTimeout %v", c.PingInterval, c.RequestTimeout)
	case c.FailLimit < 1:
		return fmt.Errorf("dht: FailLimit %d is below 1", c.FailLimit)
	case c.SamplePoolSize < -1 || c.SamplePoolSize > 10000:
		return fmt.Errorf("dht: SamplePoolSize %d: want -1 (off) to 10000", c.SamplePoolSize)
	case c.SampleInterval < c.RequestTimeout:
		return fmt.Errorf("dht: SampleInterval %v is below RequestTimeout %v", c.SampleInterval, c.RequestTimeout)
	case c.MaxPacketSize < nodesHeaderSize+c.K*contactSize6 || c.MaxPacketSize > wire.MaxUDPPayload:
		return fmt.Errorf("dht: MaxPacketSize %d out of range %d..%d (K contacts must fit)",
			c.MaxPacketSize, nodesHeaderSize+c.K*contactSize6, wire.MaxUDPPayload)
	}
	for _, b := range c.Bootstrap {
		if !usableAddr(b) {
			return fmt.Errorf("dht: bootstrap address %s cannot be reached", b)
		}
	}
	return nil
}
