package gossip

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// Peer penalties: a peer that sends a message or statement failing its
// origin's signature is charged an offence. Its score (offences, halving
// every penaltyHalfLife rounds) makes it pulled from less: a round skips it
// with probability score / banScore; at banScore it is not pulled from at
// all for banRounds. Only this node's own pulls change: it still answers
// the peer, whose pulls cost it nothing it would not spend on others.

const (
	penaltyHalfLife = 50   // rounds: 10s at the default Interval
	banScore        = 8.0  // offences (decayed) that ban a peer
	banRounds       = 150  // rounds a ban lasts: 30s at the default Interval
	maxPenalised    = 1024 // peers tracked; past it the least penalised is forgotten
	forgetScore     = 0.05 // a score below it, unbanned, is forgotten
)

type penalties struct {
	peers map[netip.AddrPort]*peerPenalty
}

type peerPenalty struct {
	score       float64 // at round
	round       uint64
	offences    uint64
	bannedUntil uint64 // the first round it may be pulled again
}

// decayed is p's score at round r.
func (p *peerPenalty) decayed(r uint64) float64 {
	if r <= p.round {
		return p.score
	}
	return p.score * math.Exp2(-float64(r-p.round)/penaltyHalfLife)
}

// penalise charges peer one offence.
func (c *Core) penalise(peer netip.AddrPort) {
	if !peer.IsValid() {
		return // this node's own input
	}
	c.trustStats.Penalties++
	ps := &c.penalties
	if ps.peers == nil {
		ps.peers = make(map[netip.AddrPort]*peerPenalty)
	}
	p := ps.peers[peer]
	if p == nil {
		if len(ps.peers) >= maxPenalised {
			ps.forgetLeast(c.round)
		}
		p = &peerPenalty{round: c.round}
		ps.peers[peer] = p
	}
	p.score = p.decayed(c.round) + 1
	p.round = c.round
	p.offences++
	if p.score >= banScore && p.bannedUntil <= c.round {
		p.bannedUntil = c.round + banRounds
	}
}

func (ps *penalties) forgetLeast(r uint64) {
	var least netip.AddrPort
	lowest := math.Inf(1)
	for a, p := range ps.peers {
		if s := p.decayed(r); s < lowest || s == lowest && a.Compare(least) < 0 {
			least, lowest = a, s
		}
	}
	delete(ps.peers, least)
}

// banned counts the peers banned at round r.
func (ps *penalties) banned(r uint64) int {
	n := 0
	for _, p := range ps.peers {
		if p.bannedUntil > r {
			n++
		}
	}
	return n
}

// filter removes from peers, sampled for round r, the banned ones and
// each penalised one with probability score / banScore, and forgets the
// penalties that have decayed away. Without penalties it draws nothing
// from rng, so that runs without offences are unchanged.
func (ps *penalties) filter(rng *rand.Rand, r uint64, peers []netip.AddrPort) []netip.AddrPort {
	if len(ps.peers) == 0 {
		return peers
	}
	for a, p := range ps.peers {
		if p.bannedUntil <= r && p.decayed(r) < forgetScore {
			delete(ps.peers, a)
		}
	}
	return slices.DeleteFunc(peers, func(a netip.AddrPort) bool {
		p := ps.peers[a]
		switch {
		case p == nil:
			return false
		case p.bannedUntil > r:
			return true
		default:
			return rng.Float64() < p.decayed(r)/banScore
		}
	})
}

// PeerPenalty is a peer's standing after offences (Core.Penalties).
type PeerPenalty struct {
	Peer     netip.AddrPort
	Score    float64       // offences, halving every 50 rounds; at 8 the peer is banned
	Offences uint64        // since it was first charged
	Banned   time.Duration // how much longer it is not pulled from; zero: not banned
}

// Penalties returns the peers charged with offences, by address.
func (c *Core) Penalties() []PeerPenalty {
	out := make([]PeerPenalty, 0, len(c.penalties.peers))
	for a, p := range c.penalties.peers {
		pp := PeerPenalty{Peer: a, Score: p.decayed(c.round), Offences: p.offences}
		if p.bannedUntil > c.round {
			pp.Banned = time.Duration(p.bannedUntil-c.round) * c.cfg.Interval
		}
		out = append(out, pp)
	}
	slices.SortFunc(out, func(a, b PeerPenalty) int { return a.Peer.Compare(b.Peer) })
	return out
}
