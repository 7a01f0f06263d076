package gossip

import (
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/wire"
)

// The receiving side: a messages datagram is checked whole, then each of
// its messages is accepted (seen filter, cache, log, digest) and delivered.

func (c *Core) handleMessages(now time.Time, body []byte) {
	// Check the whole datagram before accepting any of it.
	n := 0
	for b := body; len(b) > 0; n++ {
		wm, rest, err := decodeMessage(b)
		if err != nil || wm.seq == math.MaxUint64 || !wm.isStatement() && validateTopic(wm.topic) != nil ||
			wm.isStatement() && c.cfg.predatesStatements {
			c.drop(DropMalformed, 1)
			return
		}
		b = rest
	}
	if n == 0 {
		c.drop(DropMalformed, 1)
		return
	}
	c.stats.MessagesIn += uint64(n)
	c.dupSeen = false
	for b := body; len(b) > 0; {
		wm, rest, _ := decodeMessage(b)
		b = rest
		c.accept(now, wm)
	}
}

func (c *Core) accept(now time.Time, wm wireMessage) {
	if !c.admissible(now, &wm) {
		return
	}
	if c.signing() && !wm.isStatement() {
		c.acceptSigned(now, &wm) // held back until a statement verifies it (pending.go)
		return
	}
	c.acceptVerified(now, wm)
}

// admissible checks what makes a message unacceptable whatever its
// signature: its age, its size and the cache's room.
func (c *Core) admissible(now time.Time, wm *wireMessage) bool {
	// No shortcut on the digest's holdings here: a gap given up to
	// anti-entropy is marked held, and its repair must not be taken for a
	// duplicate. The cache and the seen filter decide.
	nowMillis := now.UnixMilli()
	if wm.created < nowMillis-c.cfg.MaxAge.Milliseconds() || c.pastHorizon(wm.created) {
		// Too old to be delivered, ever: stop peers from offering it.
		c.drop(DropTooOld, 1)
		c.held.add(wm.origin, wm.seq, c.round)
		return false
	}
	if wm.created > nowMillis+c.cfg.ClockSkew.Milliseconds() {
		// Not marked held: it becomes acceptable as our clocks converge.
		c.drop(DropFromFuture, 1)
		return false
	}
	if wire.HeaderSize+len(wm.raw) > c.cfg.MaxPacketSize {
		// A peer with a larger MaxPacketSize sent it; we could never forward it.
		c.drop(DropTooLarge, 1)
		c.held.add(wm.origin, wm.seq, c.round)
		return false
	}
	if !c.cache.hasRoom(len(wm.raw)) && (wm.chunk.count != 0 || !c.pastGossipWindow(wm.created, nowMillis)) {
		// Not marked held or seen: it will be pulled again once there is room.
		// (A repair past gossip's window is accepted uncached: see
		// pastGossipWindow.)
		c.drop(DropCacheFull, 1)
		return false
	}
	return true
}

// acceptVerified accepts an admissible message whose signature, if one
// is required, has been verified: once, as the seen filter decides.
func (c *Core) acceptVerified(now time.Time, wm wireMessage) {
	if wm.isStatement() {
		c.acceptStatement(now, &wm)
		return
	}
	if wm.chunk.count != 0 {
		c.acceptChunk(now, &wm)
		return
	}
	id := wm.knownID
	if !wm.private {
		id = hashMessageID(wm.origin, wm.seq, wm.created, wm.topic, wm.payload)
	}
	if c.validating() && !wm.validated {
		if c.unseenID(now, &wm, id) {
			c.awaitVerdict(&wm, id) // validate.go
		}
		return
	}
	// The seen filter alone decides: it keeps an ID until the message is
	// too old to pass the check above, so it knows everything cached.
	// Asking the cache first cost every new message one more map lookup to
	// spare the rare duplicate a filter lookup.
	added, err := c.cfg.Filter.Add(id, c.expiry(wm.created))
	switch {
	case errors.Is(err, filter.ErrFull):
		c.drop(DropFilterFull, 1)
		return
	case err != nil:
		c.stats.FilterErrors++
		c.drop(DropFilterError, 1)
		return
	case !added:
		c.stats.Duplicates++
		c.held.add(wm.origin, wm.seq, c.round)
		c.duplicate(now, id)
		return
	}
	e := c.newEntry(wm, id, wm.privateRaw())
	c.logAccepted(e)
	if !c.cache.hasRoom(len(e.enc)) && c.pastGossipWindow(wm.created, now.UnixMilli()) {
		c.stats.Uncached++ // a repair: see pastGossipWindow
	} else {
		c.addToCache(e)
	}
	c.held.add(wm.origin, wm.seq, c.round)
	c.out.Messages = append(c.out.Messages, e.msg)
	c.stats.Delivered++
}

// addToCache caches a message just accepted, and offers it to the pulls
// parked here.
func (c *Core) addToCache(e *cacheEntry) {
	c.cache.add(e)
	c.offerParked(e)
}

func (c *Core) expiry(createdMillis int64) time.Time {
	return timeFromMillis(createdMillis).Add(c.cfg.MaxAge)
}

// newEntry makes a cache entry for the decoded message wm, whose ID is id,
// from enc, a private copy of wm.raw that is never modified afterwards (so
// the topic can share its bytes).
func (c *Core) newEntry(wm wireMessage, id MessageID, enc []byte) *cacheEntry {
	topic := enc[wm.topicAt : wm.topicAt+len(wm.topic)]
	payload := enc[len(enc)-len(wm.payload):]
	return &cacheEntry{
		enc:   enc,
		round: c.round,
		at:    c.nowNanos(),
		bySub: c.fromSub,
		msg: Message{
			ID:      id,
			Origin:  wm.origin,
			Seq:     wm.seq,
			Created: timeFromMillis(wm.created),
			Topic:   unsafe.String(unsafe.SliceData(topic), len(topic)),
			Payload: payload[:len(payload):len(payload)],
		},
	}
}
