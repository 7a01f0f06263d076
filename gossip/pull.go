package gossip

import (
	"math"
	"net/netip"
	"slices"

	"github.com/hearsay-io/hearsay/wire"
)

// The pulling side: a pull carries the digest of what this node holds, and
// the answer brings what it lacks.

// sendPull sends one pull request to peer: the digest of what this node
// holds, split into partitions of the origin space when it does not fit in
// one datagram. A digest that fits in one carries the long-poll option lp,
// if lp.Park is set; a split one goes without (see docs/latency.md).
func (c *Core) sendPull(peer netip.AddrPort, lp LongPoll) { c.sendPullClaiming(peer, lp, nil) }

// sendPullClaiming is sendPull with the ranges of claims listed as held
// too: messages on their way from another peer.
func (c *Core) sendPullClaiming(peer netip.AddrPort, lp LongPoll, claims []OriginRanges) {
	c.ranges = c.ranges[:0]
	for i := range c.held.origins {
		o := &c.held.origins[i]
		if o.tag == LongPollTag || o.tag == StatementsTag {
			continue // would read as an option: its messages come again, as duplicates
		}
		c.ranges = append(c.ranges, OriginRanges{Origin: o.tag, Ranges: digestRanges(o.ranges, c.cfg.MaxRangesPerOrigin, c.stats.PullsSent)})
	}
	for _, cl := range claims {
		i := slices.IndexFunc(c.ranges, func(o OriginRanges) bool { return o.Origin == cl.Origin })
		if i < 0 {
			c.ranges = append(c.ranges, cl)
		} else {
			c.ranges[i].Ranges = unionRanges(c.ranges[i].Ranges, cl.Ranges)
		}
	}
	limit := c.cfg.MaxPacketSize - wire.HeaderSize - 2 - 10 // header, partition bytes, origin count
	stmts := c.announcesStatements()
	if stmts {
		limit -= statementsOptionSize
	}
	optLimit := limit
	if lp.Park > 0 {
		optLimit -= longPollSize(lp)
	}
	bits := uint8(0)
	for ; bits < MaxPartitionBits; bits++ {
		if c.largestPartition(bits) <= limit {
			break
		}
	}
	if bits > 0 || c.largestPartition(0) > optLimit {
		lp = LongPoll{}
	} else {
		limit = optLimit
	}
	if c.longPoll() {
		c.polled(peer, lp)
	}
	for p := 0; p < 1<<bits; p++ {
		req := PullRequest{PartitionBits: bits, Partition: uint8(p), LongPoll: lp, Statements: stmts}
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
