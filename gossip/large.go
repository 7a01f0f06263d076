package gossip

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/msglog"
)

// The core's side of large messages: Push cuts them into chunks, accept
// reassembles them, the round expires the partial ones, New rebuilds them
// from the log.

// pushChunked publishes a message too large for one datagram as chunks with
// the consecutive sequence numbers from seq. Everything that can refuse it
// is checked before anything is cached, logged or offered.
func (c *Core) pushChunked(seq uint64, created int64, topic string, payload []byte) (Message, error) {
	total := len(payload)
	capacity := chunkCapacity(c.cfg.MaxPacketSize, seq, created, len(topic), total)
	if capacity < MinChunkSize {
		return Message{}, fmt.Errorf("%w: no room for a chunk in a %d-byte datagram", ErrMessageTooLarge, c.cfg.MaxPacketSize)
	}
	count := (total + capacity - 1) / capacity
	if seq > math.MaxUint64-1-uint64(count) {
		return Message{}, fmt.Errorf("gossip: sequence numbers exhausted at %d", seq)
	}
	if c.signing() && count >= MaxStatementRange {
		return Message{}, fmt.Errorf("%w: %d chunks, more than one statement covers (%d) when signing", ErrMessageTooLarge, count, MaxStatementRange-1)
	}
	h := chunkHeader{count: count, total: total}
	size := 0
	for h.index = 0; h.index < count; h.index++ {
		size += chunkEncodedSize(seq+uint64(h.index), created, len(topic), &h)
	}
	if !c.cache.canHold(count, size) {
		return Message{}, fmt.Errorf("%w: %d chunks of %d bytes in all, more than the propagation cache holds (CacheMessages %d, CacheBytes %d)",
			ErrMessageTooLarge, count, size, c.cfg.CacheMessages, c.cfg.CacheBytes)
	}
	if !c.cache.hasRoomFor(count, size) {
		return Message{}, c.cacheFull()
	}
	whole := hashMessageID(c.cfg.ID, seq, created, []byte(topic), payload)
	h.whole = whole
	// One buffer for all the chunks: they enter and leave the cache together.
	buf := make([]byte, 0, size)
	entries := make([]*cacheEntry, count)
	for h.index = 0; h.index < count; h.index++ {
		start := len(buf)
		off := h.offset()
		buf = appendChunk(buf, c.cfg.ID, seq+uint64(h.index), created, topic, &h, payload[off:off+h.length()])
		enc := buf[start:len(buf):len(buf)]
		wm, _, err := decodeMessage(enc)
		if err != nil {
			return Message{}, fmt.Errorf("gossip: encoding a chunk: %w", err) // a bug, not an input error
		}
		entries[h.index] = c.newEntry(wm, hashChunkID(enc), enc)
	}
	// The whole ID first: a message is marked delivered before any of its
	// chunks is logged (see acceptChunk). A failure part way leaves IDs in
	// the filter that nothing will ever carry, and nothing offered.
	expires := c.expiry(created)
	if added, err := c.cfg.Filter.Add(whole, expires); err != nil {
		return Message{}, fmt.Errorf("gossip: seen filter: %w", err)
	} else if !added {
		return Message{}, fmt.Errorf("gossip: message %v already seen", whole)
	}
	for _, e := range entries {
		if _, err := c.cfg.Filter.Add(e.msg.ID, expires); err != nil {
			return Message{}, fmt.Errorf("gossip: seen filter: %w", err)
		}
	}
	c.nextSeq = seq + uint64(count)
	for _, e := range entries {
		c.addToCache(e)
		c.logAccepted(e)
		c.held.add(c.cfg.ID, e.msg.Seq, c.round)
		if c.signing() {
			c.published(e.msg.Seq, e.msg.ID)
		}
	}
	m := Message{ID: whole, Origin: c.cfg.ID, Seq: seq, Created: timeFromMillis(created), Topic: topic,
		Payload: append([]byte(nil), payload...)}
	c.out.Messages = append(c.out.Messages, m)
	c.stats.Published++
	c.stats.Delivered++
	c.stats.Chunks += uint64(count)
	return m, nil
}

// acceptChunk accepts a received chunk as an ordinary message (seen filter,
// cache, log, digest) and feeds it to its message's reassembly; the whole
// message is delivered when its last chunk arrives. accept has checked its
// age and its size against MaxPacketSize and the cache's room.
func (c *Core) acceptChunk(now time.Time, wm *wireMessage) {
	h := &wm.chunk
	if h.total > c.cfg.MaxMessageSize {
		// We could never deliver it: stop peers from offering it.
		c.drop(DropTooLarge, 1)
		c.held.add(wm.origin, wm.seq, c.round)
		return
	}
	id := wm.knownID
	if !wm.private {
		id = hashChunkID(wm.raw)
	}
	if c.cache.contains(id) {
		c.stats.Duplicates++
		return
	}
	r := &c.reasm
	p := r.find(h.whole)
	feed := true // whether this chunk goes into p (or a new partial)
	if p != nil {
		// matches first: it checks the count that bounds the index.
		if !p.matches(wm) || p.chunks[h.index] != nil && string(p.chunks[h.index]) != string(wm.payload) {
			// Not held, so that if p turns out to be the forgery, the
			// genuine chunks are pulled again once p is gone.
			c.drop(DropChunkInconsistent, 1)
			return
		}
		// The same chunk again (its cache entry expired): the filter decides.
		feed = p.chunks[h.index] == nil
	} else {
		delivered, err := c.cfg.Filter.Contains(h.whole)
		switch {
		case err != nil:
			c.stats.FilterErrors++
			c.drop(DropFilterError, 1)
			return
		case delivered:
			feed = false // relayed, not reassembled again
		case !r.fits(partialCost(h)):
			// Not marked held or seen: pulled again once partials complete
			// or time out. Reserving whole payloads up front means every
			// started message can finish.
			c.drop(DropPartialFull, 1)
			return
		}
	}
	var whole *Message
	if feed && p != nil && p.have == p.count-1 {
		// The last chunk. The whole ID goes into the filter before the chunk
		// is logged, so that a log holding all of a message's chunks means
		// it was delivered (New relies on it).
		p.put(h.index, wm.payload)
		payload, ok := p.assemble()
		if !ok {
			r.remove(p)
			c.drop(DropChunkMismatch, 1)
		} else {
			added, err := c.cfg.Filter.Add(p.id, c.expiry(p.created))
			if err != nil {
				p.unput(h.index) // pulled again, and the whole retried
				c.filterDrop(err)
				return
			}
			if added {
				m := p.message(payload)
				whole = &m
			} else {
				c.stats.Duplicates++ // delivered already
			}
			r.remove(p)
		}
		feed, p = false, nil
	}
	added, err := c.cfg.Filter.Add(id, c.expiry(wm.created))
	switch {
	case err != nil:
		c.filterDrop(err)
	case !added:
		// Seen before (before a restart whose log lost it): its bytes still
		// serve the reassembly.
		c.stats.Duplicates++
		c.held.add(wm.origin, wm.seq, c.round)
		c.duplicate(now, id)
		if feed {
			c.feedChunk(now, p, wm, append([]byte(nil), wm.payload...), string(wm.topic))
		}
	default:
		e := c.newEntry(*wm, id, wm.privateRaw())
		c.logAccepted(e)
		c.addToCache(e)
		c.held.add(wm.origin, wm.seq, c.round)
		c.stats.Chunks++
		if feed {
			c.feedChunk(now, p, wm, e.msg.Payload, e.msg.Topic)
		}
	}
	if whole != nil && c.validating() {
		c.awaitWhole(*whole) // validate.go
		return
	}
	if whole != nil {
		// Delivered even if the chunk could not be recorded: its whole ID is.
		c.out.Messages = append(c.out.Messages, *whole)
		c.stats.Delivered++
		c.stats.Reassembled++
	}
}

func (c *Core) filterDrop(err error) {
	if errors.Is(err, filter.ErrFull) {
		c.drop(DropFilterFull, 1)
		return
	}
	c.stats.FilterErrors++
	c.drop(DropFilterError, 1)
}

// feedChunk puts a chunk that does not complete its message into p, or into
// a new partial when p is nil. payload and topic must outlive the partial.
func (c *Core) feedChunk(now time.Time, p *partial, wm *wireMessage, payload []byte, topic string) {
	if p == nil {
		p = c.reasm.open(wm, topic, c.partialDeadline(now, wm.created))
	}
	p.put(wm.chunk.index, payload)
}

// partialDeadline is when a partial opened at now is given up: after
// ReassemblyTimeout, and no later than when its chunks become too old to
// be accepted.
func (c *Core) partialDeadline(now time.Time, createdMillis int64) time.Time {
	d := now.Add(c.cfg.ReassemblyTimeout)
	if old := timeFromMillis(createdMillis).Add(c.cfg.MaxAge); old.Before(d) {
		d = old
	}
	return d
}

// expirePartials gives up the partials past their deadline.
func (c *Core) expirePartials(now time.Time) {
	r := &c.reasm
	for _, p := range r.list {
		if p.gone {
			continue
		}
		if p.deadline.IsZero() {
			p.deadline = c.partialDeadline(now, p.created)
		}
		if !now.Before(p.deadline) {
			r.forget(p)
			c.drop(DropReassemblyTimeout, 1)
		}
	}
	if r.gone > 0 {
		r.compact()
	}
}

// rebuild gathers, while New reads the log, the chunks of large messages
// not yet delivered, so that a message whose chunks straddle a restart
// completes: the seen filter will refuse the chunks it already had. skip
// holds the messages decided on (delivered, or not to be rebuilt).
type rebuild struct {
	c    *Core
	skip map[MessageID]struct{}
}

func (b *rebuild) entry(e msglog.Entry) {
	wm, rest, err := decodeMessage(e.Data)
	if err != nil || len(rest) != 0 || wm.chunk.count == 0 || validateTopic(wm.topic) != nil {
		return
	}
	h := &wm.chunk
	if _, ok := b.skip[h.whole]; ok {
		return
	}
	c := b.c
	r := &c.reasm
	p := r.find(h.whole)
	if p == nil {
		delivered, err := c.cfg.Filter.Contains(h.whole)
		if err != nil {
			c.stats.FilterErrors++
		}
		if err != nil || delivered || h.total > c.cfg.MaxMessageSize || !r.fits(partialCost(h)) {
			if err == nil && !delivered && h.total <= c.cfg.MaxMessageSize {
				c.drop(DropPartialFull, 1)
			}
			b.skip[h.whole] = struct{}{}
			return
		}
		// The deadline is set at the first Tick: New has no clock.
		p = r.open(&wm, string(wm.topic), time.Time{})
	} else if !p.matches(&wm) || p.chunks[h.index] != nil {
		return
	}
	p.put(h.index, wm.payload) // e.Data is ours to keep
	if p.have == p.count {
		// Every chunk was logged: with the whole ID entered in the filter
		// before the last chunk is logged, it was delivered before the
		// restart (or failed its check), unless the filter did not survive
		// the restart; either way it is not delivered again.
		r.remove(p)
		b.skip[h.whole] = struct{}{}
	}
}
