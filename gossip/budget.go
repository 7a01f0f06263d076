package gossip

import (
	"net/netip"
	"slices"
	"time"
)

// Per-peer budgets of a round. A node answers any one peer with at most
// MaxAnswerBytesPerRound bytes of messages per round, whatever the pulls,
// pulls again and fetches it sends; and it pulls a peer again on a MORE at
// most maxRepullsPerRound times a round. Both are kept in a short list,
// cleared each round: a node hears from a handful of pullers per round, and
// the simulator runs a million cores, so no map per core.

// peerRound is what one peer got from this node and was asked again this
// round.
type peerRound struct {
	peer     netip.AddrPort
	answered int  // bytes of messages sent
	repulls  int  // pulls sent again on its MOREs
	grafts   int  // subscriptions moved to it on its hints
	cut      bool // an answer to a partition of its current pull was cut short
}

// maxRepullsPerRound bounds the pulls again per peer and round, whatever
// MOREs it sends: a peer answering within its budget sends at most
// MaxAnswerBytesPerRound/MaxAnswerBytes - 1 of them.
const maxRepullsPerRound = 8

// maxTrackedPeers bounds the list. Past it, peers are not tracked: they get
// one answer of MaxAnswerBytes per pull and no MORE, as a node without the
// list would.
const maxTrackedPeers = 64

// peerRoundOf returns the entry of peer for this round, adding it; nil past
// maxTrackedPeers.
func (c *Core) peerRoundOf(peer netip.AddrPort) *peerRound {
	for i := range c.peerRound {
		if c.peerRound[i].peer == peer {
			return &c.peerRound[i]
		}
	}
	if len(c.peerRound) == maxTrackedPeers {
		return nil
	}
	c.peerRound = append(c.peerRound, peerRound{peer: peer})
	return &c.peerRound[len(c.peerRound)-1]
}

// allowance is what may still be sent to the peer of pr this round; an
// untracked peer gets MaxAnswerBytes each time.
func (c *Core) allowance(pr *peerRound) int {
	if pr == nil {
		return c.cfg.MaxAnswerBytes
	}
	return c.cfg.MaxAnswerBytesPerRound - pr.answered
}

// charge counts bytes sent to the peer of pr.
func (c *Core) charge(pr *peerRound, bytes int) {
	if pr != nil {
		pr.answered += bytes
	}
}

// pullingAgain reports whether peer is being pulled again on MOREs: it was,
// less than an Interval ago.
func (c *Core) pullingAgain(now time.Time, peer netip.AddrPort) bool {
	return peer == c.repullPeer && now.Before(c.repullUntil)
}

// handleMore pulls from again, at once, if this node pulled it this round
// or the last, within maxRepullsPerRound, and no other peer is being
// pulled again.
//
// One peer at a time: a node that lacks much is busy, and so is its
// socket's queue, so a pull again sent to a second peer carried a digest
// without what the first was still sending, and both sent the same
// messages. Measured at 20,000 messages/s on 20 nodes (hearsay bench),
// pulling several peers again at once made 0.5 to 0.8 duplicates per
// message delivered and cost 30% more CPU; one at a time, 0.04 to 0.13.
// The round's pulls of other peers go on meanwhile: skipping them cut the
// variety a burst from many origins needs (1,000 nodes, 1,000 origins at
// once: 8 rounds instead of 7, 6 before MORE). Only a round pull of the
// peer being pulled again is skipped (Tick).
func (c *Core) handleMore(now time.Time, from netip.AddrPort, body []byte) {
	if len(body) != 0 {
		c.drop(DropMalformed, 1)
		return
	}
	if !slices.Contains(c.roundPeers, from) && !slices.Contains(c.lastPeers, from) {
		c.stats.MoresIgnored++
		return
	}
	if now.Before(c.repullUntil) && from != c.repullPeer {
		c.stats.MoresIgnored++
		return
	}
	pr := c.peerRoundOf(from)
	if pr == nil || pr.repulls >= maxRepullsPerRound {
		c.stats.MoresIgnored++
		return
	}
	pr.repulls++
	c.stats.Repulls++
	c.repullPeer, c.repullUntil = from, now.Add(c.cfg.Interval)
	c.sendPull(from, c.optionFor(from))
}
