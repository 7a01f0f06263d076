package node

import (
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/internal/msglog"
)

// Replay yields the logged messages a resumed subscription missed, then
// lets the subscription's channel take over with no gap and no duplicate.
type Replay struct {
	node    *Node
	pattern Pattern
	cursor  gossip.MessageID
	lastSeq uint64 // the log's last entry when the subscription began
	found   bool
	done    bool
	buf     []gossip.Message
	err     error
}

// SubscribeAfter subscribes to pattern like Subscribe, and also returns the
// messages matching it that were accepted after the message with ID after,
// as the message log still holds them. Read the Replay to its end first,
// then the Subscription: together they deliver every message accepted after
// after, once. If after is no longer (or never was) in the log, Found
// reports false and the replay is empty.
func (n *Node) SubscribeAfter(pattern string, after gossip.MessageID) (*Subscription, *Replay, error) {
	p, err := ParsePattern(pattern)
	if err != nil {
		return nil, nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	sub, err := n.subscribeLocked(p)
	if err != nil {
		return nil, nil, err
	}
	r := &Replay{node: n, pattern: p, cursor: after, lastSeq: n.log.LastSeq()}
	// Registering the subscription and reading lastSeq under one lock: every
	// message accepted later reaches the subscription, every earlier one is
	// at or before lastSeq in the log.
	r.found, err = n.log.Contains(after)
	if err != nil {
		sub.endLocked(ErrClosed)
		return nil, nil, err
	}
	r.done = !r.found
	return sub, r, nil
}

// Found reports whether the resume point was in the log.
func (r *Replay) Found() bool { return r.found }

// Next returns the next batch of replayed messages, or nil at the end.
func (r *Replay) Next() []gossip.Message {
	for !r.done {
		r.batch()
		if len(r.buf) > 0 {
			return r.buf
		}
	}
	return nil
}

// batchSize bounds the log entries read under the node's lock at a time.
const batchSize = 256

func (r *Replay) batch() {
	r.buf = r.buf[:0]
	n := r.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		r.done = true
		return
	}
	scanned := 0
	found, err := n.log.After(r.cursor, func(e msglog.Entry) bool {
		if e.Seq > r.lastSeq {
			r.done = true
			return false
		}
		r.cursor = e.ID
		scanned++
		if m, err := gossip.ParseMessage(e.Data); err == nil && r.pattern.Match(m.Topic) {
			r.buf = append(r.buf, m)
		}
		return scanned < batchSize
	})
	switch {
	case err != nil:
		r.err, r.done = err, true
	case !found || scanned < batchSize:
		// The end of the log, or the cursor was pruned under us (and all
		// that followed it with it).
		r.done = true
	}
}

// Err reports a log error that ended the replay early.
func (r *Replay) Err() error { return r.err }
