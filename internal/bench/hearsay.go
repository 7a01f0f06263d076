package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hearsay-io/hearsay/client"
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

// hearsayNode is one hearsay node on 127.0.0.1 with a subscriber recording
// its arrivals. Its peers are static: every node of the cluster, given by
// connect once all are bound.
type hearsayNode struct {
	index int
	node  *node.Node
	peers *static.Deferred // set by connect
	// api and client are set with Config.API: the node's HTTP API on a
	// loopback port, and the client that publishes and subscribes there.
	api    *http.Server
	client *client.Client
	// subDone is closed when the subscriber has stopped, after Close.
	subDone chan struct{}
	// slow is set if the subscription was cut off for falling behind: its
	// later arrivals would be missed, so the run is not valid.
	slow atomic.Bool
}

// newHearsayNode binds node index of cfg's cluster and subscribes to the
// benchmark's topic; it gossips once connect has given it its peers.
func newHearsayNode(cfg Config, key *security.Key, index int, rec arrivals) (*hearsayNode, error) {
	ring, err := security.NewKeyring()
	if key != nil {
		ring, err = security.NewKeyring(*key)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: hearsay keyring: %w", err)
	}
	n := &hearsayNode{index: index, peers: &static.Deferred{}, subDone: make(chan struct{})}
	ncfg := node.Config{
		Name:             fmt.Sprintf("bench-%d", index),
		Bind:             "127.0.0.1:0",
		Filter:           node.FilterMemory,
		Registry:         n.peers,
		Keyring:          ring,
		Security:         security.SealerConfig{Suite: cfg.Cipher},
		SubscriberBuffer: min(max(cfg.Messages, 1024), maxSubscriberBuffer),
		Logger:           slog.New(slog.DiscardHandler),
		Sign:             cfg.Sign,
	}
	ncfg.Gossip.Fanout = cfg.Fanout
	ncfg.Gossip.Interval = cfg.Interval
	ncfg.Gossip.MaxPark = cfg.LongPoll
	if n.node, err = node.New(ncfg); err != nil {
		return nil, fmt.Errorf("bench: hearsay node %d: %w", index, err)
	}
	if cfg.API {
		if err := n.subscribeAPI(cfg, rec); err != nil {
			n.node.Close()
			return nil, err
		}
		return n, nil
	}
	sub, err := n.node.Subscribe(benchTopic)
	if err != nil {
		n.node.Close()
		return nil, fmt.Errorf("bench: hearsay node %d: subscribe: %w", index, err)
	}
	messages := cfg.Messages
	go func() {
		defer close(n.subDone)
		for m := range sub.C {
			if i, ok := messageIndex(m.Payload, messages); ok {
				rec.delivered(index, i)
			}
		}
		if errors.Is(sub.Err(), node.ErrSlowSubscriber) {
			n.slow.Store(true)
		}
	}()
	return n, nil
}

// subscribeAPI serves the node's HTTP API on a loopback port and
// subscribes to the benchmark's topic over SSE, as an application would;
// the subscription is held by the node when it returns.
func (n *hearsayNode) subscribeAPI(cfg Config, rec arrivals) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench: hearsay node %d: API listener: %w", n.index, err)
	}
	n.api = &http.Server{Handler: node.NewAPI(n.node, node.APIConfig{}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = n.api.Serve(ln) }()
	if n.client, err = client.New(ln.Addr().String()); err != nil {
		n.api.Close()
		return fmt.Errorf("bench: hearsay node %d: API client: %w", n.index, err)
	}
	// One stream for the whole run: a reconnection could only hide a
	// loss, so the first end of the stream ends the subscriber.
	sub, err := n.client.Subscribe(context.Background(), benchTopic, client.WithoutReconnect(),
		client.WithIdleTimeout(max(cfg.Timeout, time.Minute)))
	if err != nil {
		n.api.Close()
		return fmt.Errorf("bench: hearsay node %d: SSE subscription: %w", n.index, err)
	}
	go func() {
		defer close(n.subDone)
		defer sub.Close()
		for {
			m, err := sub.Next()
			if err != nil {
				return
			}
			if i, ok := messageIndex(m.Payload, cfg.Messages); ok {
				rec.delivered(n.index, i)
			}
		}
	}()
	return nil
}

func (n *hearsayNode) addr() string { return n.node.Addr().String() }

// connect gives the node every node's address as its static peers and
// starts it.
func (n *hearsayNode) connect(addrs []string) error {
	reg, err := static.New(static.Config{Peers: addrs, Self: n.node.Addr()})
	if err != nil {
		return fmt.Errorf("bench: hearsay node %d: peers: %w", n.index, err)
	}
	n.peers.Set(reg)
	if err := n.node.Start(); err != nil {
		return fmt.Errorf("bench: hearsay node %d: %w", n.index, err)
	}
	return nil
}

// ready is true: a hearsay node needs nothing but its static peers.
func (n *hearsayNode) ready() bool { return true }

func (n *hearsayNode) publish(ctx context.Context, payload []byte) error {
	if n.client == nil {
		_, err := n.node.Publish(ctx, benchTopic, payload)
		return err
	}
	_, err := n.client.Publish(ctx, benchTopic, payload)
	if errors.Is(err, client.ErrBackpressure) {
		return fmt.Errorf("%w: %w", gossip.ErrBackpressure, err) // retried like the node's own
	}
	return err
}

func (n *hearsayNode) counters() counters {
	st := n.node.Stats()
	c := counters{bytesOut: st.UDP.BytesOut, duplicates: st.Gossip.Duplicates, drops: map[string]uint64{},
		headerBytes: st.UDP.DatagramsOut * udpIPv4Headers, headersKnown: true}
	for reason, count := range st.Drops {
		c.drops[reason] += count
	}
	for reason, count := range st.Gossip.Dropped {
		if count > 0 {
			c.drops[gossip.DropReason(reason).String()] += count
		}
	}
	return c
}

func (n *hearsayNode) close() error {
	err := n.node.Close()
	if n.api != nil {
		n.api.Close() // ends the SSE stream, and with it the subscriber
	}
	<-n.subDone // closing the node closes its subscription
	if err != nil {
		return fmt.Errorf("bench: closing hearsay node %d: %w", n.index, err)
	}
	if n.slow.Load() {
		return fmt.Errorf("bench: hearsay node %d: its subscriber fell behind and was cut off: arrivals were missed", n.index)
	}
	return nil
}
