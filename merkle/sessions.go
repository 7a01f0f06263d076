package merkle

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors of Sessions.Start.
var (
	// ErrSessionActive: a session with this peer is still running; a pair
	// of nodes reconciles one session at a time.
	ErrSessionActive = errors.New("merkle: a session with this peer is running")
	// ErrTooManySessions: MaxSessions sessions are running.
	ErrTooManySessions = errors.New("merkle: too many sessions running")
)

// DefaultMaxSessions is the default of SessionsConfig.MaxSessions.
const DefaultMaxSessions = 4

// SessionsConfig configures Sessions.
type SessionsConfig struct {
	// Session configures every session; its Rand is required and draws
	// every session's ID.
	Session SessionConfig
	// MaxSessions bounds the sessions running at once, and so the memory
	// of anti-entropy. A node starts one session per AEInterval, so more
	// than one runs only when a peer is slow. Default 4.
	MaxSessions int
}

// Outgoing is a datagram to send to a peer.
type Outgoing[P comparable] struct {
	To   P
	Data []byte
}

// Finished is the outcome of a session with a peer.
type Finished[P comparable] struct {
	Peer   P
	Result Result
}

// Ready is what the caller must act on after an input of Sessions.
type Ready[P comparable] struct {
	// Datagrams to send now, in order. The caller may keep them.
	Datagrams []Outgoing[P]
	// Finished lists the sessions that ended since the last Ready: pull
	// each Result's Missing from its Peer, push it its Extra.
	Finished []Finished[P]
}

// Sessions runs the initiator's side of anti-entropy with many peers, at
// most one session per peer at a time, as one deterministic state machine.
// P identifies a peer (a netip.AddrPort, a node ID). Drive it like a
// Session: Start, Handle and Tick, then act on Ready and call Tick again at
// NextTick. Sessions is not safe for concurrent use.
type Sessions[P comparable] struct {
	tree   *Tree
	cfg    SessionsConfig
	active map[P]*Session
	order  []P // peers in the order their sessions started, for determinism
	ready  Ready[P]
}

// NewSessions returns a Sessions that reconciles tree with peers' trees.
func NewSessions[P comparable](tree *Tree, cfg SessionsConfig) (*Sessions[P], error) {
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxSessions < 1 {
		return nil, fmt.Errorf("%w: MaxSessions %d is below 1", ErrInvalidConfig, cfg.MaxSessions)
	}
	cfg.Session.setDefaults()
	if err := cfg.Session.validate(tree.Config()); err != nil {
		return nil, err
	}
	return &Sessions[P]{tree: tree, cfg: cfg, active: make(map[P]*Session)}, nil
}

// Start starts a session with peer. It fails with ErrSessionActive if one
// is running with that peer, and with ErrTooManySessions if MaxSessions
// are running.
func (m *Sessions[P]) Start(now time.Time, peer P) error {
	if _, ok := m.active[peer]; ok {
		return ErrSessionActive
	}
	if len(m.active) >= m.cfg.MaxSessions {
		return ErrTooManySessions
	}
	s, err := NewSession(m.tree, m.cfg.Session)
	if err != nil {
		return err
	}
	m.active[peer] = s
	m.order = append(m.order, peer)
	s.Start(now)
	m.collect(peer, s)
	return nil
}

// Active reports whether a session with peer is running.
func (m *Sessions[P]) Active(peer P) bool {
	_, ok := m.active[peer]
	return ok
}

// Len returns the number of sessions running.
func (m *Sessions[P]) Len() int { return len(m.active) }

// Handle takes the body of a wire.AEAnswerV2 datagram from peer. Errors are as for
// Session.Handle; an answer from a peer with no session running is stale.
func (m *Sessions[P]) Handle(now time.Time, from P, body []byte) error {
	return m.handle(from, body, func(s *Session) error { return s.Handle(now, body) },
		func(b []byte) error { _, err := DecodeAnswerV2(b); return err })
}

// HandleV1 takes the body of a wire.AEAnswer datagram (protocol v1) from
// peer: see Session.HandleV1.
func (m *Sessions[P]) HandleV1(now time.Time, from P, body []byte) error {
	return m.handle(from, body, func(s *Session) error { return s.HandleV1(now, body) },
		func(b []byte) error { _, err := DecodeAnswer(b); return err })
}

// handle hands body to from's session, or, with none running, reports it
// stale if it decodes.
func (m *Sessions[P]) handle(from P, body []byte, handle func(*Session) error, decode func([]byte) error) error {
	s, ok := m.active[from]
	if !ok {
		if err := decode(body); err != nil {
			return err
		}
		return fmt.Errorf("%w: no session with this peer", ErrStaleAnswer)
	}
	err := handle(s)
	m.collect(from, s)
	return err
}

// Tick resends overdue queries and ends the sessions that timed out.
func (m *Sessions[P]) Tick(now time.Time) {
	for _, peer := range slices.Clone(m.order) {
		s := m.active[peer]
		s.Tick(now)
		m.collect(peer, s)
	}
}

// NextTick returns when Tick must next be called; the zero time if no
// session is waiting for an answer.
func (m *Sessions[P]) NextTick() time.Time {
	var next time.Time
	for _, s := range m.active {
		if t := s.NextTick(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// Ready returns what to do after the inputs since the last call.
func (m *Sessions[P]) Ready() Ready[P] {
	rd := m.ready
	m.ready.Datagrams = m.ready.Datagrams[:0:0]
	m.ready.Finished = m.ready.Finished[:0:0]
	return rd
}

// collect moves s's outputs to Ready and retires it if it ended.
func (m *Sessions[P]) collect(peer P, s *Session) {
	for _, dg := range s.Ready() {
		m.ready.Datagrams = append(m.ready.Datagrams, Outgoing[P]{To: peer, Data: dg})
	}
	if s.Done() {
		m.ready.Finished = append(m.ready.Finished, Finished[P]{Peer: peer, Result: s.Result()})
		delete(m.active, peer)
		m.order = slices.DeleteFunc(m.order, func(p P) bool { return p == peer })
	}
}
