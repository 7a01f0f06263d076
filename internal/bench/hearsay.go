package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/node"
	"github.com/hearsay-io/hearsay/registry/static"
	"github.com/hearsay-io/hearsay/security"
)

// benchTopic is the topic of every message the benchmark publishes.
const benchTopic = "bench"

// maxSubscriberBuffer bounds each node's subscription buffer: the
// subscriber only records arrivals, so it keeps up, and a larger buffer
// would cost memory for nothing.
const maxSubscriberBuffer = 16384

// cluster is one system's running nodes, as the workload drives them.
type cluster interface {
	// publish publishes payload from node origin; the payload is the
	// cluster's from then on. gossip.ErrBackpressure: retry later.
	publish(ctx context.Context, origin int, payload []byte) error
	// counters returns what the nodes did so far, summed.
	counters() counters
	// close stops every node; it returns the first error.
	close() error
}

// counters are a cluster's cumulative counters, summed over its nodes.
type counters struct {
	bytesOut   uint64 // bytes sent on the wire, every packet and stream included
	duplicates uint64 // copies of a message received by a node that already had it
	// drops counts what the nodes dropped, by reason: datagrams and
	// messages, whatever the system reports.
	drops map[string]uint64
}

// since returns the counts from before to c.
func (c counters) since(before counters) counters {
	d := counters{bytesOut: c.bytesOut - before.bytesOut, duplicates: c.duplicates - before.duplicates,
		drops: map[string]uint64{}}
	for reason, n := range c.drops {
		if n > before.drops[reason] {
			d.drops[reason] = n - before.drops[reason]
		}
	}
	return d
}

// hearsayCluster is N hearsay nodes on 127.0.0.1, each with every other as
// a static peer, and a subscriber per node recording arrivals.
type hearsayCluster struct {
	nodes []*node.Node
	subs  sync.WaitGroup
	// slow counts the subscriptions cut off for falling behind: their
	// later arrivals would be missed, so the run is not valid.
	slow atomic.Int64
}

func startHearsay(cfg Config, key *security.Key, rec *recorder) (*hearsayCluster, error) {
	c := &hearsayCluster{}
	logger := slog.New(slog.DiscardHandler)
	peers := make([]*latePeers, cfg.Nodes)
	buffer := min(max(cfg.Messages, 1024), maxSubscriberBuffer)
	for i := range cfg.Nodes {
		ring, err := security.NewKeyring()
		if key != nil {
			ring, err = security.NewKeyring(*key)
		}
		if err != nil {
			c.close()
			return nil, fmt.Errorf("bench: hearsay keyring: %w", err)
		}
		peers[i] = &latePeers{}
		ncfg := node.Config{
			Name:             fmt.Sprintf("bench-%d", i),
			Bind:             "127.0.0.1:0",
			Filter:           node.FilterMemory,
			Registry:         peers[i],
			Keyring:          ring,
			SubscriberBuffer: buffer,
			Logger:           logger,
		}
		ncfg.Gossip.Fanout = cfg.Fanout
		ncfg.Gossip.Interval = cfg.Interval
		n, err := node.New(ncfg)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("bench: hearsay node %d: %w", i, err)
		}
		c.nodes = append(c.nodes, n)
	}
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr().String()
	}
	for i, n := range c.nodes {
		reg, err := static.New(static.Config{Peers: addrs, Self: n.Addr()})
		if err != nil {
			c.close()
			return nil, fmt.Errorf("bench: hearsay peers: %w", err)
		}
		peers[i].reg.Store(reg)
	}
	for i, n := range c.nodes {
		sub, err := n.Subscribe(benchTopic)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("bench: hearsay subscribe: %w", err)
		}
		c.subs.Add(1)
		go func() {
			defer c.subs.Done()
			for m := range sub.C {
				rec.delivered(i, m.Payload)
			}
			if errors.Is(sub.Err(), node.ErrSlowSubscriber) {
				c.slow.Add(1)
			}
		}()
	}
	for i, n := range c.nodes {
		if err := n.Start(); err != nil {
			c.close()
			return nil, fmt.Errorf("bench: hearsay node %d: %w", i, err)
		}
	}
	return c, nil
}

func (c *hearsayCluster) publish(ctx context.Context, origin int, payload []byte) error {
	_, err := c.nodes[origin].Publish(ctx, benchTopic, payload)
	return err
}

func (c *hearsayCluster) counters() counters {
	sum := counters{drops: map[string]uint64{}}
	for _, n := range c.nodes {
		st := n.Stats()
		sum.bytesOut += st.UDP.BytesOut
		sum.duplicates += st.Gossip.Duplicates
		for reason, count := range st.Drops {
			sum.drops[reason] += count
		}
		for reason, count := range st.Gossip.Dropped {
			if count > 0 {
				sum.drops[gossip.DropReason(reason).String()] += count
			}
		}
	}
	return sum
}

func (c *hearsayCluster) close() error {
	var first error
	for _, n := range c.nodes {
		if err := n.Close(); err != nil && first == nil {
			first = fmt.Errorf("bench: closing hearsay node: %w", err)
		}
	}
	c.subs.Wait() // closing a node closes its subscription
	if first == nil && c.slow.Load() > 0 {
		first = fmt.Errorf("bench: %d hearsay subscribers fell behind and were cut off: arrivals were missed", c.slow.Load())
	}
	return first
}

// latePeers is a node's registry, filled in once every node is bound: their
// ports are not known before.
type latePeers struct {
	reg atomic.Pointer[static.Registry]
}

func (p *latePeers) Peers() []netip.AddrPort {
	if reg := p.reg.Load(); reg != nil {
		return reg.Peers()
	}
	return nil
}

func (p *latePeers) SamplePeers(rng *rand.Rand, n int, dst []netip.AddrPort) []netip.AddrPort {
	if reg := p.reg.Load(); reg != nil {
		return reg.SamplePeers(rng, n, dst)
	}
	return dst
}
