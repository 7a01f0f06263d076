package simulations

import (
	"fmt"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
)

// Publications and the record of their delivery to every node.

// messageRecord follows one published message.
type messageRecord struct {
	id        gossip.MessageID
	publisher int
	at        int64 // virtual millisecond of the publication
	// first holds, per node, 1 + the virtual millisecond at which the node
	// first delivered the message, 0 if it has not: 4 bytes per node
	// rather than a map entry.
	first       []uint32
	deliveredUp int // nodes up that have delivered it
}

func (s *Simulator) recordDelivery(i int, id gossip.MessageID) {
	s.accepted++
	m, ok := s.msgIndex[id]
	if !ok {
		return // published through a Core directly: not followed
	}
	rec := &s.msgs[m]
	if rec.first[i] != 0 {
		s.redelivered++
		return
	}
	ms := (s.net.Now().Sub(s.start) + time.Millisecond - 1) / time.Millisecond
	rec.first[i] = uint32(ms) + 1
	rec.deliveredUp++
}

// Publish publishes a message from node i now. The simulator follows its
// delivery to every node: see Delivered and DeliveredAt, which take the
// message's index, the number of messages published before it.
func (s *Simulator) Publish(i int, topic string, payload []byte) (gossip.Message, error) {
	if err := s.checkNode(i); err != nil {
		return gossip.Message{}, fmt.Errorf("publish: %w", err)
	}
	n := &s.nodes[i]
	if n.state != nodeUp {
		return gossip.Message{}, fmt.Errorf("publish from node %d: %w", i, ErrNodeDown)
	}
	msg, err := n.core.Push(s.clock(s.nowMs).Add(n.skew), topic, payload)
	if err != nil {
		return msg, fmt.Errorf("publish from node %d: %w", i, err)
	}
	s.msgIndex[msg.ID] = len(s.msgs)
	s.msgs = append(s.msgs, messageRecord{id: msg.ID, publisher: i, at: s.nowMs, first: make([]uint32, len(s.nodes))})
	s.flush(int32(i))
	return msg, nil
}

// Messages is the number of messages published with Publish.
func (s *Simulator) Messages() int { return len(s.msgs) }

// Delivered is the number of nodes up that have delivered message m.
func (s *Simulator) Delivered(m int) int { return s.msgs[m].deliveredUp }

// DeliveredAt returns how long after its publication node i first
// delivered message m (to the millisecond above), and whether it did.
func (s *Simulator) DeliveredAt(m, i int) (time.Duration, bool) {
	rec := &s.msgs[m]
	if rec.first[i] == 0 {
		return 0, false
	}
	return time.Duration(int64(rec.first[i])-1-rec.at) * time.Millisecond, true
}

// AllDelivered reports whether every node up has delivered every message.
func (s *Simulator) AllDelivered() bool {
	for m := range s.msgs {
		if s.msgs[m].deliveredUp < s.nodesUp {
			return false
		}
	}
	return true
}

// Missing counts the nodes up that lack at least one message.
func (s *Simulator) Missing() int {
	missing := 0
	for i := range s.nodes {
		if s.nodes[i].state != nodeUp {
			continue
		}
		for m := range s.msgs {
			if s.msgs[m].first[i] == 0 {
				missing++
				break
			}
		}
	}
	return missing
}

// Redelivered counts deliveries of a message to a node that had delivered
// it before: zero, unless nodes restart without their seen filter.
func (s *Simulator) Redelivered() uint64 { return s.redelivered }
