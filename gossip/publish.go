package gossip

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/wire"
)

// Errors that Push returns and callers branch on.
var (
	// ErrMessageTooLarge: the payload is larger than MaxMessageSize, or its
	// chunks could never fit in the propagation cache.
	ErrMessageTooLarge = errors.New("gossip: message too large")
	// ErrBackpressure: this node's recent messages have not spread yet
	// (SpreadWindow), or the propagation cache is full of messages that are
	// still spreading. Push returns it as a *BackpressureError, which says
	// how long to wait (RetryAfterOf).
	ErrBackpressure = errors.New("gossip: backpressure, retry later")
	// ErrInvalidTopic: the topic is not a valid topic (see ValidateTopic).
	ErrInvalidTopic = errors.New("gossip: invalid topic")
)

// Push publishes a message from this node: it is accepted (and returned in
// the next Ready's Messages for local delivery) and offered to pullers. A
// payload too large for one datagram is offered as chunks, all or none:
// ErrBackpressure if the cache cannot take them all now. While SpreadWindow
// of this node's messages have not spread, Push refuses with
// ErrBackpressure (spread.go).
func (c *Core) Push(now time.Time, topic string, payload []byte) (Message, error) {
	c.begin()
	c.now, c.from, c.fromSub = now, netip.AddrPort{}, false
	defer c.flushParked(now)
	if err := ValidateTopic(topic); err != nil {
		return Message{}, err
	}
	if len(payload) > c.cfg.MaxMessageSize {
		return Message{}, fmt.Errorf("%w: %d bytes of payload, the limit is %d (MaxMessageSize)",
			ErrMessageTooLarge, len(payload), c.cfg.MaxMessageSize)
	}
	if err := c.admit(); err != nil {
		return Message{}, err
	}
	seq := c.nextSeq
	if seq == 0 {
		// Start from the clock so that a restarted node, which has
		// forgotten its counter, continues above its old numbers.
		seq = uint64(max(now.UnixMicro(), 1))
	}
	created := now.UnixMilli()
	if created <= 0 {
		return Message{}, fmt.Errorf("gossip: clock before 1970: %v", now)
	}
	if c.sign.runFirst == 0 {
		c.sign.runFirst = seq
	}
	if c.spreadGauge.first == 0 {
		c.spreadGauge.firstPublished(seq)
	}
	size := EncodedMessageSize(seq, created, len(topic), len(payload))
	if wire.HeaderSize+size > c.cfg.MaxPacketSize {
		if c.signing() && len(c.sign.ids) > 0 {
			// A statement cannot come between a message's chunks: the
			// chunks start a window of their own.
			c.signNow(now)
			seq = c.nextSeq
		}
		m, err := c.pushChunked(seq, created, topic, payload)
		if err == nil && c.signing() {
			c.maybeSign(now)
		}
		return m, err
	}
	if !c.cache.hasRoom(size) {
		return Message{}, c.cacheFull()
	}
	enc := appendMessage(make([]byte, 0, size), c.cfg.ID, seq, created, topic, payload)
	wm, _, err := decodeMessage(enc)
	if err != nil {
		return Message{}, fmt.Errorf("gossip: encoding a message: %w", err) // a bug, not an input error
	}
	e := c.newEntry(wm, hashMessageID(wm.origin, wm.seq, wm.created, wm.topic, wm.payload), enc)
	if added, err := c.cfg.Filter.Add(e.msg.ID, c.expiry(created)); err != nil {
		return Message{}, fmt.Errorf("gossip: seen filter: %w", err)
	} else if !added {
		return Message{}, fmt.Errorf("gossip: message %v already seen", e.msg.ID)
	}
	c.nextSeq = seq + 1
	c.addToCache(e)
	c.logAccepted(e)
	c.held.add(c.cfg.ID, seq, c.round)
	c.out.Messages = append(c.out.Messages, e.msg)
	c.stats.Published++
	c.stats.Delivered++
	if c.signing() {
		c.published(seq, e.msg.ID)
		c.maybeSign(now)
	}
	return e.msg, nil
}
