package dht

import (
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
)

// DropReason says why a datagram was dropped.
type DropReason int

// Drop reasons. Each is a label of a dropped-datagrams metric.
const (
	DropMalformed   DropReason = iota // does not decode
	DropVersion                       // another wire version
	DropUnsolicited                   // an answer that matches no request of ours (late, forged, or from another address)
	DropSelf                          // from this node itself, through another address
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"malformed", "version", "unsolicited", "self"}

func (r DropReason) String() string {
	if r >= 0 && r < numDropReasons {
		return dropReasonNames[r]
	}
	return "unknown"
}

// DropReasons lists every drop reason, for metrics.
func DropReasons() []DropReason {
	rs := make([]DropReason, numDropReasons)
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}

// Stats are a table's counters and gauges.
type Stats struct {
	DatagramsIn, DatagramsOut uint64
	BytesIn, BytesOut         uint64
	Dropped                   [numDropReasons]uint64 // by DropReason

	RequestsIn   uint64 // PING and FIND_NODE received
	RequestsSent uint64 // PING and FIND_NODE sent
	PingsSent    uint64
	AnswersIn    uint64 // answers that matched a request
	Timeouts     uint64 // requests that went unanswered
	NodesSent    uint64 // contacts sent in NODES answers

	Evicted  uint64 // contacts forgotten after FailLimit unanswered requests, or replaced at their address
	Replaced uint64 // table contacts replaced by a fresher one after an unanswered request

	// Lookups completed, with the sums of their hops and messages: divide
	// for the means.
	Lookups, LookupHops, LookupMessages uint64

	// Joined: a lookup of our own ID found other nodes. False while
	// joining, and again if every contact is lost (the table then joins
	// anew through the bootstrap and saved addresses).
	Joined bool

	TableSize int // contacts in the buckets
	PoolSize  int // distinct contacts in the sample pool
	Answering int // distinct answering contacts: what Peers returns
	// NetworkSize is the estimated number of nodes, from the spread of
	// lookup results; 0 before the first lookup.
	NetworkSize float64
}

// Stats returns the table's counters and gauges.
func (t *Table) Stats() Stats {
	s := t.stats
	for i := range t.buckets {
		s.TableSize += len(t.buckets[i].entries)
	}
	s.PoolSize = t.pool.size
	s.Joined = t.bootstrapped
	t.rebuild()
	s.Answering = len(t.peers)
	s.NetworkSize = t.estimatedSize()
	return s
}

// BucketInfo describes one bucket, for /v1/peers.
type BucketInfo struct {
	// Index is the number of leading bits the bucket's IDs share with ours:
	// bucket i covers 2^-(i+1) of the ID space.
	Index        int
	Contacts     int // at most K
	Answering    int // those that answered their last request
	Replacements int // answering nodes waiting for a place
}

// Buckets describes the buckets from 0 (the farthest half of the ID space)
// to the deepest one in use.
func (t *Table) Buckets() []BucketInfo {
	deepest := -1
	for i := range t.buckets {
		if len(t.buckets[i].entries) > 0 {
			deepest = i
		}
	}
	out := make([]BucketInfo, 0, deepest+1)
	for i := 0; i <= deepest; i++ {
		b := &t.buckets[i]
		info := BucketInfo{Index: i, Contacts: len(b.entries), Replacements: len(b.replacements)}
		for _, c := range b.entries {
			if c.answering() {
				info.Answering++
			}
		}
		out = append(out, info)
	}
	return out
}

// ContactInfo describes one contact, for /v1/peers.
type ContactInfo struct {
	ID        gossip.NodeID
	Addr      netip.AddrPort
	Bucket    int       // its bucket, or -1 if it is only in the sample pool
	InPool    bool      // gossip samples it
	LastSeen  time.Time // its last answer; zero if it never answered
	Fails     int       // consecutive unanswered requests
	Answering bool      // answered its last request: handed to gossip and to other nodes
}

// Contacts describes every contact: the table's, bucket by bucket, then the
// pool's that are not in the table.
func (t *Table) Contacts() []ContactInfo {
	out := make([]ContactInfo, 0, len(t.contacts))
	info := func(c *contact) ContactInfo {
		info := ContactInfo{ID: c.id, Addr: c.addr, Bucket: int(c.bucket), InPool: c.poolRefs > 0,
			Fails: int(c.fails), Answering: c.answering()}
		if c.lastSeen != 0 {
			info.LastSeen = time.Unix(0, c.lastSeen).UTC()
		}
		return info
	}
	for i := range t.buckets {
		for _, c := range t.buckets[i].entries {
			out = append(out, info(c))
		}
	}
	listed := make(map[*contact]bool)
	for _, r := range t.pool.regions {
		for _, c := range r.members {
			if c.bucket < 0 && !listed[c] {
				listed[c] = true
				out = append(out, info(c))
			}
		}
	}
	return out
}
