package gossip

import (
	"bytes"
	"crypto/ed25519"
	"net/netip"
	"slices"
	"time"
)

// Origins' public keys, as receivers learn them. Most statements leave
// their origin's key out (sign.go, keyEvery); a node verifies those with
// the key it cached from an earlier statement of that origin, one that
// carried the key, hashed to the origin's ID and verified. A keyless
// statement of an origin whose key is not cached waits, held in the digest
// (so it is not pulled again), for the next keyed one; or is given up
// after unsignedRounds, as unsigned, and un-held, so that it is pulled
// again later.

// Bounds: past maxKnownKeys the longest cached key is forgotten (its
// origin's keyless statements wait for a keyed one again); past the
// waiting bounds a keyless statement is dropped (pending_full) and not
// held, so it comes again.
const (
	maxKnownKeys               = 4096
	maxWaitingStatements       = 1024
	maxWaitingStatementsOrigin = 64
)

// knownKeys is a core's cache of verified keys and its keyless statements
// waiting for one.
type knownKeys struct {
	keys    map[NodeID]ed25519.PublicKey
	order   []NodeID // oldest first
	waiting []keyless
}

// keyless is a keyless statement waiting for its origin's key.
type keyless struct {
	origin NodeID
	seq    uint64
	id     MessageID
	enc    []byte // a private copy of its encoding
	from   netip.AddrPort
	round  uint64
}

// keyOf returns the cached key of origin; nil if none.
func (c *Core) keyOf(origin NodeID) ed25519.PublicKey {
	if origin == c.cfg.ID && c.signing() {
		return c.cfg.SigningKey.Public().(ed25519.PublicKey)
	}
	return c.keys.keys[origin]
}

// learnKey caches pub, a key that has just verified a statement of origin.
func (k *knownKeys) learnKey(origin NodeID, pub []byte) {
	if k.keys == nil {
		k.keys = make(map[NodeID]ed25519.PublicKey)
	}
	if _, ok := k.keys[origin]; ok {
		return
	}
	if len(k.order) == maxKnownKeys {
		delete(k.keys, k.order[0])
		k.order = slices.Delete(k.order, 0, 1)
	}
	k.keys[origin] = bytes.Clone(pub)
	k.order = append(k.order, origin)
}

// waitForKey holds wm, a keyless statement with ID id whose origin's key is
// not cached, until a keyed one brings the key.
func (c *Core) waitForKey(wm *wireMessage, id MessageID) {
	k := &c.keys
	n := 0
	for i := range k.waiting {
		if w := &k.waiting[i]; w.origin == wm.origin {
			if w.id == id {
				c.stats.Duplicates++
				return
			}
			n++
		}
	}
	if n >= maxWaitingStatementsOrigin || len(k.waiting) >= maxWaitingStatements {
		c.drop(DropPendingFull, 1)
		return
	}
	k.waiting = append(k.waiting, keyless{origin: wm.origin, seq: wm.seq, id: id, enc: bytes.Clone(wm.raw), from: c.from, round: c.round})
	c.trustStats.AwaitedKey++
	c.held.add(wm.origin, wm.seq, c.round)
}

// keyLearned verifies and accepts the keyless statements of origin that
// waited for its key, now cached, as if they came now from their senders.
func (c *Core) keyLearned(now time.Time, origin NodeID) {
	k := &c.keys
	var ready []keyless
	k.waiting = slices.DeleteFunc(k.waiting, func(w keyless) bool {
		if w.origin == origin {
			ready = append(ready, w)
			return true
		}
		return false
	})
	from := c.from
	for _, w := range ready {
		wm, _, err := decodeMessage(w.enc)
		if err != nil {
			continue // decoded once already
		}
		wm.knownID, wm.private = w.id, true
		c.held.remove(origin, w.seq) // held again if it verifies
		c.from = w.from
		c.acceptStatement(now, &wm)
	}
	c.from = from
}

// expireKeyless gives up, once a round, keyless statements that waited
// unsignedRounds for a key: dropped as unsigned and un-held, so that they
// are pulled again. Their senders are not penalised: an honest one relays
// a keyless statement it verified with a key this node may have forgotten.
func (c *Core) expireKeyless() {
	k := &c.keys
	if len(k.waiting) == 0 || c.round <= c.unsignedRounds() {
		return
	}
	before := c.round - c.unsignedRounds()
	k.waiting = slices.DeleteFunc(k.waiting, func(w keyless) bool {
		if w.round < before {
			c.drop(DropUnsigned, 1)
			c.held.remove(w.origin, w.seq)
			return true
		}
		return false
	})
}
