package node

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/hearsay-io/hearsay/registry"
)

// A node answers a pull that lacks nothing with a wire.PullAck, at most
// once per AckInterval per peer: a header and no body. Pull gossip
// otherwise answers only pulls that lack something, so an idle peer could
// not be told from a dead one. The gossip core does not know this type;
// the node consumes it.

// peerSet is what the gossip core samples its peers from: the registry's
// peers less the ones that stopped answering (peer hygiene, whatever the
// registry).
//
// A peer is suspected once at least minUnanswered pulls were sent to it over
// timeout with no datagram at all coming back: no answer, no pull of its
// own, no PULL_ACK. It is then skipped, except for one probe pull per
// timeout, until any datagram from it arrives. Every method but registry
// and setRegistry runs under the node's lock.
type peerSet struct {
	reg       atomic.Pointer[registryBox]
	timeout   time.Duration
	ackEvery  time.Duration
	now       func() time.Time
	silent    map[netip.AddrPort]*silence // peers pulled since they were last heard
	acked     map[netip.AddrPort]time.Time
	scratch   []netip.AddrPort
	skipped   uint64 // pulls not sent to a suspect
	recovered uint64 // suspects heard from again
	suspected uint64 // peers that became suspects
	onChange  func(addr netip.AddrPort, suspect bool)
}

type registryBox struct{ r registry.Registry }

// silence is what is known of a peer that has not been heard from since it
// was first pulled.
type silence struct {
	since     time.Time // the first pull since it was last heard
	pulls     int
	suspect   bool
	lastProbe time.Time
}

// minUnanswered is the fewest pulls that must go unanswered before a peer
// is suspected: with one pull, a single lost datagram would do it.
const minUnanswered = 3

// maxTracked bounds the silent peers and the ack times kept; past it they
// are forgotten, which only delays a suspicion or sends one ack early.
const maxTracked = 1 << 14

func newPeerSet(r registry.Registry, timeout time.Duration, now func() time.Time) *peerSet {
	p := &peerSet{timeout: timeout, ackEvery: timeout / 4, now: now,
		silent: map[netip.AddrPort]*silence{}, acked: map[netip.AddrPort]time.Time{}}
	p.setRegistry(r)
	return p
}

func (p *peerSet) setRegistry(r registry.Registry) { p.reg.Store(&registryBox{r}) }

func (p *peerSet) registry() registry.Registry { return p.reg.Load().r }

// SamplePeers implements gossip.PeerSampler: a uniform sample of the
// registry's peers, with suspects left out.
func (p *peerSet) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	suspects := 0
	for _, s := range p.silent {
		if s.suspect {
			suspects++
		}
	}
	// Draw enough that the suspects among the draw cannot leave us short.
	p.scratch = p.registry().SamplePeers(rng, n+min(suspects, 64), p.scratch[:0])
	now := p.now()
	taken := 0
	for _, a := range p.scratch {
		if taken == n {
			break
		}
		if p.skip(a, now) {
			p.skipped++
			continue
		}
		dst = append(dst, a)
		taken++
	}
	return dst
}

// skip reports whether a should not be pulled now; a suspect is let
// through once per timeout, as a probe.
func (p *peerSet) skip(a netip.AddrPort, now time.Time) bool {
	s := p.silent[a]
	if s == nil {
		return false
	}
	if !s.suspect && s.pulls >= minUnanswered && now.Sub(s.since) >= p.timeout {
		s.suspect = true
		s.lastProbe = now
		p.suspected++
		if p.onChange != nil {
			p.onChange(a, true)
		}
		return true
	}
	if !s.suspect {
		return false
	}
	if now.Sub(s.lastProbe) >= p.timeout {
		s.lastProbe = now
		return false
	}
	return true
}

// pulled records a pull sent to a.
func (p *peerSet) pulled(a netip.AddrPort, now time.Time) {
	s := p.silent[a]
	if s == nil {
		if len(p.silent) >= maxTracked {
			clear(p.silent)
		}
		s = &silence{since: now}
		p.silent[a] = s
	}
	s.pulls++
}

// heard records an authentic datagram from a.
func (p *peerSet) heard(a netip.AddrPort) {
	s := p.silent[a]
	if s == nil {
		return
	}
	delete(p.silent, a)
	if s.suspect {
		p.recovered++
		if p.onChange != nil {
			p.onChange(a, false)
		}
	}
}

// shouldAck reports whether a pull from a that got no answer should get a
// PULL_ACK now, and if so counts it.
func (p *peerSet) shouldAck(a netip.AddrPort, now time.Time) bool {
	if last, ok := p.acked[a]; ok && now.Sub(last) < p.ackEvery {
		return false
	}
	if len(p.acked) >= maxTracked {
		clear(p.acked)
	}
	p.acked[a] = now
	return true
}

// suspects lists the suspected peers.
func (p *peerSet) suspects() []netip.AddrPort {
	var out []netip.AddrPort
	for a, s := range p.silent {
		if s.suspect {
			out = append(out, a)
		}
	}
	return out
}
