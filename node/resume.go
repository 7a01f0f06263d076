package node

import (
	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/msglog"
)

// Replay yields the logged messages a resumed subscription missed, then
// lets the subscription's channel take over with no gap and no duplicate.
//
// The log holds a large message as its chunks; the message takes the log
// position of its last-logged chunk, where the node delivered it. So a
// replay reads the log from its start through a gossip.Reassembler: chunks
// logged before the resume point may belong to a message completed after
// it.
type Replay struct {
	node     *Node
	pattern  Pattern
	after    gossip.MessageID
	cursor   msglog.ID // the last entry read; valid once started
	curSeq   uint64    // its Seq
	lost     bool      // the cursor was pruned or evicted: read from the start, past curSeq
	started  bool
	lastSeq  uint64 // the log's last entry when the subscription began
	ra       *gossip.Reassembler
	seeking  bool // the resume point is not passed yet
	leftover bool // buf holds what the seek read past the resume point
	found    bool
	done     bool
	buf      []gossip.Message
	err      error
}

// SubscribeAfter subscribes to pattern like Subscribe, and also returns the
// messages matching it that were accepted after the message with ID after,
// as the message log still holds them. Read the Replay to its end first,
// then the Subscription: together they deliver every message accepted after
// after, once. If after is no longer (or never was) in the log, Found
// reports false and the replay is empty.
//
// Finding the resume point reads the log from its start, in batches that
// let the node run between them.
func (n *Node) SubscribeAfter(pattern string, after gossip.MessageID) (*Subscription, *Replay, error) {
	return n.subscribeReplay(pattern, after, true)
}

// SubscribeLogged subscribes to pattern like Subscribe, and also returns
// every message matching it that the message log still holds, oldest
// first: a resume point before everything logged. Found reports true.
func (n *Node) SubscribeLogged(pattern string) (*Subscription, *Replay, error) {
	return n.subscribeReplay(pattern, gossip.MessageID{}, false)
}

// subscribeReplay subscribes, and replays the log after the message after
// (seek), or all of it.
func (n *Node) subscribeReplay(pattern string, after gossip.MessageID, seek bool) (*Subscription, *Replay, error) {
	p, err := ParsePattern(pattern)
	if err != nil {
		return nil, nil, err
	}
	n.mu.Lock()
	sub, err := n.subscribeLocked(p)
	if err != nil {
		n.mu.Unlock()
		return nil, nil, err
	}
	// Registering the subscription and reading lastSeq under one lock: every
	// message accepted later reaches the subscription, every earlier one is
	// at or before lastSeq in the log.
	r := &Replay{node: n, pattern: p, after: after, lastSeq: n.log.LastSeq(), seeking: seek,
		ra: gossip.NewReassembler(n.core.Config().MaxPartialBytes)}
	n.mu.Unlock()
	for r.seeking && !r.done {
		r.batch()
	}
	if r.err != nil {
		sub.Close()
		return nil, nil, r.err
	}
	r.found = !r.seeking
	r.done = r.done || !r.found
	r.leftover = seek
	return sub, r, nil
}

// Found reports whether the resume point was in the log.
func (r *Replay) Found() bool { return r.found }

// Next returns the next batch of replayed messages, or nil at the end.
func (r *Replay) Next() []gossip.Message {
	if r.leftover { // read by the seek, past the resume point
		r.leftover = false
		if len(r.buf) > 0 {
			return r.buf
		}
	}
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
	if !r.seeking {
		r.buf = r.buf[:0]
	}
	n := r.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		r.done = true
		return
	}
	scanned := 0
	visit := func(e msglog.Entry) bool {
		if e.Seq > r.lastSeq {
			r.done = true
			return false
		}
		if r.lost && e.Seq <= r.curSeq {
			return true // read before the cursor went
		}
		r.cursor, r.curSeq, r.started = e.ID, e.Seq, true
		scanned++
		m, ok, err := r.ra.Add(e.Data)
		if err != nil {
			ok = false // a corrupt entry is skipped, as the live node dropped it
		}
		switch {
		case r.seeking:
			if e.ID == r.after || (ok && m.ID == r.after) {
				r.seeking = false
				r.buf = r.buf[:0]
			}
		case ok && r.pattern.Match(m.Topic):
			r.buf = append(r.buf, m)
		}
		return scanned < batchSize
	}
	found := true
	var err error
	if r.started && !r.lost {
		found, err = n.log.After(r.cursor, visit)
	}
	if !found || !r.started || r.lost {
		// The cursor was pruned, or evicted for the byte bound, under us:
		// with days of retention a replay may take long enough for the
		// oldest entries to go while the ones after it stay. Read on from
		// the start, past what was read.
		r.lost = r.started
		err = n.log.ForEach(visit)
	}
	switch {
	case err != nil:
		r.err, r.done = err, true
	case scanned < batchSize:
		r.done = true // the end of the log
	}
}

// Err reports a log error that ended the replay early.
func (r *Replay) Err() error { return r.err }
