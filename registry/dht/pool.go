package dht

import (
	"math"
	"slices"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
)

// The sample pool: contacts spread uniformly over the whole network, for
// gossip to sample from.
//
// A Kademlia table is heavily skewed toward its owner's region of the ID
// space: half of it lies within a few bits of the owner's ID. And which far
// nodes it holds depends on history: the oldest nodes sit in everyone's far
// buckets. Sampling gossip peers from it would make a few nodes hubs.
//
// So the pool is made of regions: a region is the set of all nodes whose
// IDs start with a given prefix of L bits, the prefix chosen uniformly at
// random. Every node of the network then lies in a chosen region with
// probability exactly 2^-L, whoever it is and whatever our table holds: the
// pool is a uniform random subset of the network. A region is enumerated by
// one lookup of a random ID with that prefix, because the K nodes closest
// to an ID include every node that shares L bits with it as long as there
// are at most K of them. L is chosen from the estimated network size so
// that a region holds K/4 to K/2 nodes on average; a region found full (K
// nodes, perhaps more) is split in two halves, each looked up in turn, so
// that dense regions are enumerated whole too.

type region struct {
	target  gossip.NodeID
	bits    int       // the prefix length: the region is 2^-bits of the ID space
	found   []Contact // while its lookups run
	members []*contact
	pending int // lookups still running
}

type pool struct {
	cfg        *Config
	regions    []*region // complete ones, oldest first
	size       int       // distinct members
	running    int       // regions being looked up
	whole      bool      // the newest region is the whole network
	nextSample time.Time
	maxRegions int

	log2N     float64 // estimate of log2 of the network's size
	estimates int
}

// maxSplits bounds how many times a region found full is split.
const maxSplits = 2

func (p *pool) init(cfg *Config) {
	p.cfg = cfg
	p.maxRegions = max(8, 4*cfg.SamplePoolSize/cfg.K)
}

func (p *pool) enabled() bool { return p.cfg.SamplePoolSize > 0 }

// filling reports whether the pool is below its size: regions are then
// looked up back to back.
func (p *pool) filling() bool {
	return p.size < p.cfg.SamplePoolSize && len(p.regions) < p.maxRegions && !p.whole
}

// nextAt is when the pool next wants a Tick (zero: no need).
func (p *pool) nextAt(*Table) time.Time {
	if !p.enabled() || p.filling() || p.running > 0 {
		return time.Time{} // the end of a lookup, an input, starts the next
	}
	return p.nextSample
}

func (p *pool) startDue(t *Table) {
	if !p.enabled() {
		return
	}
	if p.filling() {
		for p.running < 2 {
			p.start(t)
		}
		return
	}
	if p.running == 0 && !t.now.Before(p.nextSample) {
		p.start(t)
		p.nextSample = t.now.Add(p.cfg.SampleInterval)
	}
}

// start looks up a new region.
func (p *pool) start(t *Table) {
	bits := p.regionBits()
	r := &region{target: withPrefix(t.cfg.Rand, gossip.NodeID{}, 0, false), bits: bits, pending: 1}
	t.waiting = append(t.waiting, lookupSpec{target: r.target, purpose: LookupSample, region: r, regionBits: bits})
	p.running++
}

// regionBits is the prefix length that gives regions of K/4 to K/2 nodes.
func (p *pool) regionBits() int {
	log2N, ok := p.sizeLog2()
	if !ok {
		return 0
	}
	bits := int(math.Ceil(log2N + 1 - math.Log2(float64(p.cfg.K))))
	return min(max(bits, 0), IDBits-16)
}

// minRegionsForEstimate is the number of regions from which their sizes
// estimate the network's size better than lookups do.
const minRegionsForEstimate = 8

// sizeLog2 estimates log2 of the network's size. With enough regions in the
// pool it is exact in expectation: a region of 2^-L of the ID space holds
// N·2^-L nodes on average. Only the newest regions count, so that the
// estimate follows a growing network. Before that, lookups give a rougher
// estimate.
func (p *pool) sizeLog2() (float64, bool) {
	if len(p.regions) >= minRegionsForEstimate {
		var nodes, share float64
		for _, r := range p.regions[len(p.regions)-minRegionsForEstimate:] {
			nodes += float64(len(r.members))
			share += math.Exp2(-float64(r.bits))
		}
		return math.Log2(nodes/share + 1), true // +1: us
	}
	return p.log2N, p.estimates > 0
}

// estimate updates the network-size estimate from a lookup's result: the
// K-th closest of N random IDs lies at about K/N of the ID space.
func (p *pool) estimate(t *Table, target gossip.NodeID, closest []Contact) {
	var x float64
	switch {
	case len(closest) == t.cfg.K:
		d := xor(closest[len(closest)-1].ID, target)
		x = math.Log2(float64(t.cfg.K)) + IDBits - d.log2()
	case len(closest) > 0:
		x = math.Log2(float64(len(closest) + 1)) // everyone, and us
	default:
		return
	}
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return
	}
	p.estimates++
	p.log2N += (x - p.log2N) / float64(min(p.estimates, 8))
}

// lookupDone collects the region's nodes found by one of its lookups.
func (p *pool) lookupDone(t *Table, l *lookup, closest []Contact) {
	r := l.region
	inPart := 0
	for _, c := range closest {
		if commonPrefix(c.ID, l.target) >= l.regionBits {
			inPart++
		}
		if commonPrefix(c.ID, r.target) >= r.bits && !slices.ContainsFunc(r.found, func(f Contact) bool { return f.ID == c.ID }) {
			r.found = append(r.found, c)
		}
	}
	if inPart == t.cfg.K && l.regionBits < r.bits+maxSplits && l.regionBits < IDBits {
		// Full: there may be more. Enumerate both halves.
		for _, half := range []bool{false, true} {
			target := withPrefix(t.cfg.Rand, l.target, l.regionBits, false)
			setBit(&target, l.regionBits, half)
			t.waiting = append(t.waiting, lookupSpec{target: target, purpose: LookupSample, region: r, regionBits: l.regionBits + 1})
			r.pending++
		}
	}
	r.pending--
	if r.pending == 0 {
		p.running--
		p.add(t, r)
	}
}

// add makes a fully enumerated region part of the pool, dropping the
// oldest regions the pool no longer needs.
func (p *pool) add(t *Table, r *region) {
	for _, f := range r.found {
		c := t.contacts[f.ID]
		if c == nil {
			// It answered during the lookup but its bucket is full.
			c = newContact(f.ID, f.Addr)
			c.lastSeen = t.nowNs
			c.nextPing = t.nowNs + int64(t.cfg.PingInterval)
			t.contacts[c.id] = c
			t.schedule.update(c)
		}
		if c.poolRefs == 0 {
			p.size++
		}
		c.poolRefs++
		r.members = append(r.members, c)
	}
	r.found = nil
	p.whole = r.bits == 0
	if p.whole {
		for len(p.regions) > 0 {
			p.drop(t)
		}
	}
	p.regions = append(p.regions, r)
	for len(p.regions) > 1 && (len(p.regions) > p.maxRegions || p.size-p.onlyIn(p.regions[0]) >= p.cfg.SamplePoolSize) {
		p.drop(t)
	}
	t.dirty = true
}

// onlyIn counts the members no other region lists.
func (p *pool) onlyIn(r *region) int {
	n := 0
	for _, c := range r.members {
		if c.poolRefs == 1 {
			n++
		}
	}
	return n
}

// drop removes the oldest region.
func (p *pool) drop(t *Table) {
	r := p.regions[0]
	p.regions[0] = nil
	p.regions = p.regions[1:]
	for _, c := range r.members {
		c.poolRefs--
		if c.poolRefs == 0 {
			p.size--
			if c.bucket < 0 {
				t.forget(c)
			}
		}
	}
	t.dirty = true
}

// remove takes an evicted contact out of every region.
func (p *pool) remove(t *Table, c *contact) {
	for _, r := range p.regions {
		r.members = slices.DeleteFunc(r.members, func(m *contact) bool { return m == c })
	}
	if c.poolRefs > 0 {
		p.size--
	}
	c.poolRefs = 0
	t.dirty = true
}
