package gossip

import (
	"math"
	"net/netip"

	"github.com/hearsay-io/hearsay/wire"
)

// The pulling side: a pull carries the digest of what this node holds, and
// the answer brings what it lacks.

// sendPull sends one pull request to peer: the digest of what this node
// holds, split into partitions of the origin space when it does not fit in
// one datagram.
func (c *Core) sendPull(peer netip.AddrPort) {
	c.ranges = c.ranges[:0]
	for i := range c.held.origins {
		o := &c.held.origins[i]
		c.ranges = append(c.ranges, OriginRanges{Origin: o.tag, Ranges: digestRanges(o.ranges, c.cfg.MaxRangesPerOrigin, c.stats.PullsSent)})
	}
	limit := c.cfg.MaxPacketSize - wire.HeaderSize - 2 - 10 // header, partition bytes, origin count
	bits := uint8(0)
	for ; bits < MaxPartitionBits; bits++ {
		if c.largestPartition(bits) <= limit {
			break
		}
	}
	for p := 0; p < 1<<bits; p++ {
		req := PullRequest{PartitionBits: bits, Partition: uint8(p)}
		size := 0
		for _, o := range c.ranges {
			if partitionOf(o.Origin, bits) != uint8(p) {
				continue
			}
			// Past the limit, the least recently listed origins are left
			// out: the peer sends their messages again and we count the
			// duplicates. Only thousands of active origins get here.
			if s := originRangesSize(&o); size+s <= limit {
				size += s
				req.Origins = append(req.Origins, o)
			}
		}
		start := len(c.arena)
		c.arena = AppendPullRequest(c.arena, &req)
		c.emit(peer, start)
		c.stats.PullsSent++
		c.stats.PullBytesOut += uint64(len(c.arena) - start)
	}
}

func (c *Core) largestPartition(bits uint8) int {
	c.sizes = append(c.sizes[:0], make([]int, 1<<bits)...)
	for i := range c.ranges {
		c.sizes[partitionOf(c.ranges[i].Origin, bits)] += originRangesSize(&c.ranges[i])
	}
	return max(0, maxOf(c.sizes))
}

func maxOf(xs []int) int {
	m := math.MinInt
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
