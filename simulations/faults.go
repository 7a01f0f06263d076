package simulations

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/hearsay-io/hearsay/filter"
	"github.com/hearsay-io/hearsay/msglog"
)

// The faults a run injects: late starts, crashes, restarts and
// partitions.

// Errors the Simulator's node operations return.
var (
	ErrNoSuchNode  = errors.New("simulations: no such node")
	ErrNodeDown    = errors.New("simulations: node is not up")
	ErrNodeUp      = errors.New("simulations: node is already up")
	ErrNodeStarted = errors.New("simulations: node has already started")
)

func (s *Simulator) checkNode(i int) error {
	if i < 0 || i >= len(s.nodes) {
		return fmt.Errorf("%w: %d (nodes are 0 to %d)", ErrNoSuchNode, i, len(s.nodes)-1)
	}
	return nil
}

// Start starts node i, a late joiner that has never run.
func (s *Simulator) Start(i int) error {
	if err := s.checkNode(i); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if s.nodes[i].state != nodeWaiting {
		return fmt.Errorf("start node %d: %w", i, ErrNodeStarted)
	}
	return s.startNode(i, nil, nil)
}

// Crash stops node i at once: its core is dropped, datagrams to it are
// lost. Its seen filter is kept for a stateful Restart.
func (s *Simulator) Crash(i int) error {
	if err := s.checkNode(i); err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	n := &s.nodes[i]
	if n.state != nodeUp {
		return fmt.Errorf("crash node %d: %w", i, ErrNodeDown)
	}
	s.retire(n.core.Stats())
	if s.keptFilters == nil {
		s.keptFilters = make(map[int]filter.SeenFilter)
	}
	s.keptFilters[i] = n.core.Config().Filter
	if l := n.core.Config().Log; l != nil {
		if s.keptLogs == nil {
			s.keptLogs = make(map[int]msglog.Log)
		}
		s.keptLogs[i] = l
	}
	if s.tables != nil {
		s.tables.stop(i)
	}
	s.net.Detach(NodeAddr(i))
	n.core, n.ep, n.state = nil, nil, nodeDown
	s.nodesUp--
	for m := range s.msgs {
		if s.msgs[m].first[i] != 0 {
			s.msgs[m].deliveredUp--
		}
	}
	return nil
}

// Restart restarts crashed node i: RestartStateful keeps its ID and seen
// filter, RestartStateless starts afresh. Either way its propagation cache
// and digest start empty.
func (s *Simulator) Restart(i int, mode RestartMode) error {
	if err := s.checkNode(i); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	n := &s.nodes[i]
	if n.state != nodeDown {
		return fmt.Errorf("restart node %d: %w", i, ErrNodeUp)
	}
	var f filter.SeenFilter
	switch mode {
	case RestartStateful:
		f = s.keptFilters[i]
	case RestartStateless:
	default:
		return fmt.Errorf("restart node %d: mode %v is not a restart", i, mode)
	}
	var log msglog.Log
	if mode == RestartStateful {
		log = s.keptLogs[i]
	}
	delete(s.keptFilters, i)
	delete(s.keptLogs, i)
	n.incarnation++
	return s.startNode(i, f, log)
}

// Partition splits the network from now on: nodes below split×Nodes in one
// group, the others in the second. Datagrams between the groups are
// dropped, those in flight included.
func (s *Simulator) Partition(split float64) {
	bound := int(split * float64(len(s.nodes)))
	s.net.Partition(func(a netip.AddrPort) int {
		if NodeIndex(a) < bound {
			return 0
		}
		return 1
	})
}

// Heal ends a partition.
func (s *Simulator) Heal() {
	s.net.Heal()
}
