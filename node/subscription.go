package node

import "github.com/hearsay-io/hearsay/gossip"

// Subscribe returns a subscription to the messages whose topic matches
// pattern (see ParsePattern), from now on.
func (n *Node) Subscribe(pattern string) (*Subscription, error) {
	p, err := ParsePattern(pattern)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.subscribeLocked(p)
}

func (n *Node) subscribeLocked(p Pattern) (*Subscription, error) {
	if n.closed {
		return nil, ErrClosed
	}
	ch := make(chan gossip.Message, n.cfg.SubscriberBuffer)
	s := &Subscription{C: ch, ch: ch, pattern: p, node: n}
	n.subs[s] = struct{}{}
	return s, nil
}

// Subscription delivers the messages matching a pattern on C. C is closed
// when the subscription ends: by Close, by the node closing, or because the
// subscriber fell more than Config.SubscriberBuffer messages behind; Err then
// says which.
type Subscription struct {
	C       <-chan gossip.Message
	ch      chan gossip.Message
	pattern Pattern
	node    *Node
	err     error // guarded by node.mu
}

// offer delivers m without ever blocking the node.
func (s *Subscription) offer(m gossip.Message) {
	if !s.pattern.Match(m.Topic) {
		return
	}
	select {
	case s.ch <- m:
	default:
		s.endLocked(ErrSlowSubscriber)
	}
}

func (s *Subscription) endLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	close(s.ch)
	delete(s.node.subs, s)
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.node.mu.Lock()
	defer s.node.mu.Unlock()
	s.endLocked(ErrClosed)
}

// Err reports why the subscription ended, or nil while it is open.
func (s *Subscription) Err() error {
	s.node.mu.Lock()
	defer s.node.mu.Unlock()
	return s.err
}

// Pattern returns the subscription's pattern.
func (s *Subscription) Pattern() Pattern { return s.pattern }
