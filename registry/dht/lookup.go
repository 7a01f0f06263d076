package dht

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/wire"
)

// Purpose says why a lookup ran.
type Purpose uint8

// Lookup purposes.
const (
	LookupSelf    Purpose = iota + 1 // joining: a lookup of our own ID
	LookupRefresh                    // a bucket refresh: a random ID in a bucket's range
	LookupSample                     // renewing the sample pool: a random region of the ID space
	LookupUser                       // Table.Lookup
)

func (p Purpose) String() string {
	switch p {
	case LookupSelf:
		return "self"
	case LookupRefresh:
		return "refresh"
	case LookupSample:
		return "sample"
	case LookupUser:
		return "user"
	}
	return fmt.Sprintf("purpose-%d", uint8(p))
}

// LookupResult is a completed lookup.
type LookupResult struct {
	Target  gossip.NodeID
	Purpose Purpose
	// Closest are the K nodes closest to Target that answered, closest
	// first; fewer if the network has fewer.
	Closest []Contact
	// Hops is the length of the chain of requests that led to Closest[0]:
	// 1 if this node knew it, 2 if a node it knew named it, and so on. 0
	// when nothing was found.
	Hops int
	// Messages is the number of FIND_NODE requests sent; Timeouts of them
	// went unanswered.
	Messages, Timeouts int
	// Duration is from start to completion.
	Duration time.Duration
}

type lookupSpec struct {
	target  gossip.NodeID
	purpose Purpose
	region  *region // LookupSample only
	// regionBits is the prefix length of the part of region this lookup
	// enumerates (LookupSample only).
	regionBits int
}

type candidateState uint8

const (
	candidateFresh    candidateState = iota // not asked yet
	candidateAsked                          // a FIND_NODE is in flight
	candidateAnswered                       // it answered
	candidateFailed                         // it did not answer, or is not who we thought
)

type candidate struct {
	Contact
	dist  distance
	hop   int
	state candidateState
}

// lookup is one iterative FIND_NODE lookup: it keeps Alpha requests in
// flight to the closest candidates not asked yet, and ends when the K
// closest candidates that did not fail have all answered.
type lookup struct {
	lookupSpec
	cands    []candidate // by distance to target
	inflight int
	messages int
	timeouts int
	started  time.Time
	done     bool
	partial  bool // a sample lookup that stopped once its region was enumerated
}

func (t *Table) startLookups() {
	for len(t.waiting) > 0 && len(t.lookups) < t.cfg.MaxLookups {
		spec := t.waiting[0]
		t.waiting = t.waiting[1:]
		t.startLookup(spec)
	}
	if len(t.waiting) == 0 {
		t.waiting = nil // let the array go
	}
}

func (t *Table) startLookup(spec lookupSpec) {
	l := &lookup{lookupSpec: spec, started: t.now}
	for _, c := range t.closest(spec.target, t.cfg.K, true, gossip.NodeID{}) {
		l.cands = append(l.cands, candidate{Contact: c.asContact(), dist: xor(c.id, spec.target), hop: 1})
	}
	if spec.purpose == LookupSelf {
		t.selfLookup = l
	}
	t.lookups = append(t.lookups, l)
	l.advance(t)
}

// maxCandidates bounds a lookup's candidate list, in multiples of K: room
// for the K closest and for those that replace the ones that fail.
const maxCandidates = 4

func (l *lookup) advance(t *Table) {
	if l.done {
		return
	}
	live, open := 0, false
	// A sample lookup only needs its region's nodes. Candidates are sorted
	// by distance, so the region's come first; once one of them answered
	// (naming every other: they are all in its deepest buckets) and none
	// is left to ask, the region is enumerated.
	inRegion, regionDone := 0, l.purpose == LookupSample
	for i := 0; i < len(l.cands) && live < t.cfg.K; i++ {
		c := &l.cands[i]
		if c.state == candidateFailed {
			continue
		}
		live++
		if l.purpose == LookupSample && c.dist.leadingZeros() >= l.regionBits {
			if c.state == candidateAnswered {
				inRegion++
			} else {
				regionDone = false
			}
		}
		if c.state == candidateAnswered {
			continue
		}
		open = true
		if c.state == candidateFresh && l.inflight < t.cfg.Alpha {
			r := t.request(wire.DHTFindNode, c.Addr, c.ID, l)
			t.emitPacket(c.Addr, &Packet{Type: wire.DHTFindNode, Sender: t.cfg.Self, RequestID: r.id, Target: l.target, Padding: t.padding})
			c.state = candidateAsked
			l.inflight++
			l.messages++
		}
	}
	if !open {
		l.finish(t)
	} else if regionDone && inRegion > 0 && inRegion < t.cfg.K {
		l.partial = true
		l.finish(t)
	}
}

func (l *lookup) find(id gossip.NodeID) int {
	return slices.IndexFunc(l.cands, func(c candidate) bool { return c.ID == id })
}

// answered handles the NODES answer of the candidate expected, which came
// from sender.
func (l *lookup) answered(t *Table, expected, sender gossip.NodeID, from netip.AddrPort, nodes []Contact) {
	l.inflight--
	hop := 1
	if i := l.find(expected); i >= 0 {
		c := &l.cands[i]
		hop = c.hop + 1
		if sender == expected {
			c.state = candidateAnswered
		} else {
			c.state = candidateFailed
			l.add(t, Contact{ID: sender, Addr: from}, c.hop)
		}
	}
	for _, n := range nodes {
		l.add(t, n, hop)
	}
	l.advance(t)
}

func (l *lookup) failed(t *Table, expected gossip.NodeID) {
	l.inflight--
	l.timeouts++
	if i := l.find(expected); i >= 0 {
		l.cands[i].state = candidateFailed
	}
	l.advance(t)
}

// add inserts a contact named by a peer into the candidates, unless it is
// this node, unusable, or already there (by ID or by address: one address
// cannot stand for many IDs).
func (l *lookup) add(t *Table, n Contact, hop int) {
	n.Addr = unmap(n.Addr)
	if n.ID == t.cfg.Self || n.Addr == t.cfg.SelfAddr || !usableAddr(n.Addr) {
		return
	}
	for i := range l.cands {
		c := &l.cands[i]
		if c.ID == n.ID || c.Addr == n.Addr {
			if c.ID == n.ID {
				c.hop = min(c.hop, hop)
			}
			return
		}
	}
	d := xor(n.ID, l.target)
	pos, _ := slices.BinarySearchFunc(l.cands, d, func(c candidate, d distance) int {
		switch {
		case c.dist.less(d):
			return -1
		case d.less(c.dist):
			return 1
		}
		return 0
	})
	limit := maxCandidates * t.cfg.K
	if pos >= limit {
		return
	}
	l.cands = slices.Insert(l.cands, pos, candidate{Contact: n, dist: d, hop: hop})
	if len(l.cands) > limit {
		// Drop the farthest that is not awaited.
		for i := len(l.cands) - 1; i >= 0; i-- {
			if l.cands[i].state != candidateAsked {
				l.cands = slices.Delete(l.cands, i, i+1)
				break
			}
		}
	}
}

func (l *lookup) finish(t *Table) {
	l.done = true
	res := LookupResult{
		Target:   l.target,
		Purpose:  l.purpose,
		Messages: l.messages,
		Timeouts: l.timeouts,
		Duration: t.now.Sub(l.started),
	}
	for _, c := range l.cands {
		if c.state == candidateAnswered && len(res.Closest) < t.cfg.K {
			if len(res.Closest) == 0 {
				res.Hops = c.hop
			}
			res.Closest = append(res.Closest, c.Contact)
		}
	}
	l.cands = nil
	if i := slices.Index(t.lookups, l); i >= 0 {
		t.lookups = slices.Delete(t.lookups, i, i+1)
	}
	t.stats.Lookups++
	t.stats.LookupHops += uint64(res.Hops)
	t.stats.LookupMessages += uint64(res.Messages)
	if i := commonPrefix(t.cfg.Self, l.target); i < len(t.buckets) {
		t.buckets[i].refreshed = t.nowNs
	}
	if !l.partial {
		t.pool.estimate(t, l.target, res.Closest)
	}
	switch l.purpose {
	case LookupSelf:
		t.selfLookup = nil
		if len(res.Closest) > 0 {
			t.bootstrapped = true
			t.backoff = 2 * t.cfg.RequestTimeout
			t.refreshAt = t.now
		} else {
			t.bootstrapAt = t.now.Add(t.backoff)
		}
	case LookupSample:
		t.pool.lookupDone(t, l, res.Closest)
	}
	t.out.Lookups = append(t.out.Lookups, res)
}
