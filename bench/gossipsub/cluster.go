package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// topicName is the one topic every host joins and publishes to.
const topicName = "hearsay-bench"

// listenAddr binds each host to an ephemeral port on the loopback address.
const listenAddr = "/ip4/127.0.0.1/tcp/0"

// meshTimeout bounds the wait for the connections and the mesh.
const meshTimeout = 30 * time.Second

// gsHost is one libp2p host running GossipSub with default parameters,
// subscribed to the topic.
type gsHost struct {
	index  int
	host   host.Host
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	tracer *tracer
	wire   *wire
	// degree is how many other hosts this one is connected to.
	degree int
}

// cluster is the run's hosts, their subscribers recording arrivals.
type cluster struct {
	hosts   []*gsHost
	cancel  context.CancelFunc // stops every pubsub instance and subscriber
	readers sync.WaitGroup
}

// startCluster starts cfg.Nodes hosts on 127.0.0.1, joins each to the
// topic with a subscriber recording arrivals in rec, connects them as
// cfg.neighbours says and waits until every host knows all its neighbours
// as topic peers and has a mesh of min(D_lo, degree) peers. On error it
// stops what it started.
func startCluster(ctx context.Context, cfg Config, rec *recorder) (*cluster, error) {
	runCtx, cancel := context.WithCancel(context.Background())
	c := &cluster{cancel: cancel}
	dials := cfg.neighbours()
	for i := range cfg.Nodes {
		h, err := startHost(runCtx, i)
		if err != nil {
			return nil, errors.Join(err, c.close())
		}
		c.hosts = append(c.hosts, h)
		c.readers.Add(1)
		go h.record(runCtx, rec, cfg.Messages, &c.readers)
	}
	for i, js := range dials {
		c.hosts[i].degree += len(js)
		for _, j := range js {
			c.hosts[j].degree++
		}
	}
	if err := c.connect(ctx, dials); err != nil {
		return nil, errors.Join(err, c.close())
	}
	if err := c.waitForMesh(ctx); err != nil {
		return nil, errors.Join(err, c.close())
	}
	return c, nil
}

// startHost starts host index: libp2p's defaults (TLS or Noise, yamux,
// a random Ed25519 identity) with only the TCP transport, counted, on
// 127.0.0.1; GossipSub with its defaults and a tracer.
func startHost(ctx context.Context, index int) (*gsHost, error) {
	g := &gsHost{index: index, tracer: newTracer(), wire: newWire()}
	var err error
	g.host, err = libp2p.New(
		libp2p.ListenAddrStrings(listenAddr),
		libp2p.NoTransports,
		libp2p.Transport(countedTCP(g.wire)),
	)
	if err != nil {
		return nil, fmt.Errorf("gossipsub bench: host %d: %w", index, err)
	}
	if g.ps, err = pubsub.NewGossipSub(ctx, g.host, pubsub.WithRawTracer(g.tracer)); err != nil {
		return nil, errors.Join(fmt.Errorf("gossipsub bench: host %d: pubsub: %w", index, err), g.host.Close())
	}
	if g.topic, err = g.ps.Join(topicName); err != nil {
		return nil, errors.Join(fmt.Errorf("gossipsub bench: host %d: joining the topic: %w", index, err), g.host.Close())
	}
	if g.sub, err = g.topic.Subscribe(); err != nil {
		return nil, errors.Join(fmt.Errorf("gossipsub bench: host %d: subscribing: %w", index, err), g.host.Close())
	}
	return g, nil
}

// record reads the host's subscription until ctx ends, recording the
// first arrival of each of the run's messages.
func (g *gsHost) record(ctx context.Context, rec *recorder, messages int, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		msg, err := g.sub.Next(ctx)
		if err != nil {
			return // cancelled: the run is over
		}
		if index, ok := messageIndex(msg.Data, messages); ok {
			rec.delivered(g.index, index)
		}
	}
}

// connect has each host dial its hosts of dials, all hosts at once.
func (c *cluster) connect(ctx context.Context, dials [][]int) error {
	ctx, cancel := context.WithTimeout(ctx, meshTimeout)
	defer cancel()
	errs := make([]error, len(dials))
	var wg sync.WaitGroup
	for i, js := range dials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, j := range js {
				to := c.hosts[j].host
				if err := c.hosts[i].host.Connect(ctx, peer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()}); err != nil {
					errs[i] = fmt.Errorf("gossipsub bench: host %d dialing host %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// meshReady reports whether h knows every neighbour as a topic peer and
// has grafted as many as GossipSub's D_lo, or all of them if it has fewer.
func (g *gsHost) meshReady() bool {
	return len(g.topic.ListPeers()) >= g.degree && g.tracer.meshSize() >= min(pubsub.GossipSubDlo, g.degree)
}

// waitForMesh polls until every host's mesh is ready.
func (c *cluster) waitForMesh(ctx context.Context) error {
	deadline := time.NewTimer(meshTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := 0
		for _, h := range c.hosts {
			if h.meshReady() {
				ready++
			}
		}
		if ready == len(c.hosts) {
			return nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("gossipsub bench: after %s only %d of %d hosts have their mesh", meshTimeout, ready, len(c.hosts))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// clusterCounters are the hosts' figures at one moment, summed.
type clusterCounters struct {
	bytes      uint64
	segments   segments
	duplicates uint64
	drops      map[string]uint64
	cpu        time.Duration
	cpuKnown   bool
}

func (c *cluster) counters() clusterCounters {
	total := clusterCounters{segments: segments{known: true}, drops: map[string]uint64{}}
	for _, h := range c.hosts {
		w := h.wire.counters()
		total.bytes += w.bytes
		total.segments = total.segments.plus(w.segments)
		t := h.tracer.counters()
		total.duplicates += t.duplicates
		for reason, n := range t.drops {
			total.drops[reason] += n
		}
	}
	total.cpu, total.cpuKnown = processCPU()
	return total
}

// since returns the counters' growth from before.
func (c clusterCounters) since(before clusterCounters) clusterCounters {
	d := clusterCounters{
		bytes: c.bytes - before.bytes,
		segments: segments{
			count: c.segments.count - before.segments.count, headers: c.segments.headers - before.segments.headers,
			known: c.segments.known && before.segments.known,
		},
		duplicates: c.duplicates - before.duplicates,
		drops:      map[string]uint64{},
		cpu:        c.cpu - before.cpu, cpuKnown: c.cpuKnown && before.cpuKnown,
	}
	for reason, n := range c.drops {
		if n > before.drops[reason] {
			d.drops[reason] = n - before.drops[reason]
		}
	}
	return d
}

// close stops every host and waits for the subscribers.
func (c *cluster) close() error {
	var errs []error
	for _, h := range c.hosts {
		if h.sub != nil {
			h.sub.Cancel()
		}
	}
	c.cancel()
	for _, h := range c.hosts {
		if err := h.host.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gossipsub bench: closing host %d: %w", h.index, err))
		}
	}
	c.readers.Wait()
	return errors.Join(errs...)
}
