package msglog_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/msglog"
	"github.com/hearsay-io/hearsay/node"
	"github.com/hearsay-io/hearsay/registry/static"
	"github.com/hearsay-io/hearsay/transport"
)

// Two nodes embedded in one program, each given a message log of its own
// (node.Config.Log; here a Memory, but any Log will do). Node b joins after
// gossip stopped offering a's messages: gossip brings it nothing, and
// anti-entropy, which reconciles the two logs by their Merkle trees, brings
// it everything. The nodes run on an in-memory network, on its virtual
// clock, so the example runs in an instant and always prints the same.
func Example_antiEntropy() {
	network := transport.NewNetwork(transport.NetworkConfig{})
	addrA := netip.MustParseAddrPort("127.0.0.1:7600")
	addrB := netip.MustParseAddrPort("127.0.0.2:7600")
	start := func(name string, self, peer netip.AddrPort, seed uint64) (*node.Node, msglog.Log) {
		log := msglog.NewMemory(0)
		ep, err := network.Listen(self)
		if err != nil {
			panic(err)
		}
		peers, err := static.New(static.Config{Peers: []string{peer.String()}})
		if err != nil {
			panic(err)
		}
		n, err := node.New(node.Config{Name: name, Transport: ep, Clock: network, Registry: peers, Log: log,
			Rand: rand.New(rand.NewPCG(seed, seed)), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			panic(err)
		}
		if err := n.Start(); err != nil {
			panic(err)
		}
		return n, log
	}
	run := func(d time.Duration) { network.RunUntil(network.Now().Add(d)) }

	a, logA := start("a", addrA, addrB, 1)
	defer a.Close()
	for i := range 20 {
		if _, err := a.Publish(context.Background(), "orders", []byte(fmt.Sprintf("order %d", i))); err != nil {
			panic(err)
		}
	}
	// Gossip offers a message for CacheRounds rounds (6 s by default).
	run(10 * time.Second)

	b, logB := start("b", addrB, addrA, 2)
	defer b.Close()
	sub, err := b.Subscribe(">")
	if err != nil {
		panic(err)
	}
	run(time.Second)
	fmt.Printf("gossip alone: b logged %d of a's %d messages\n", logB.Len(), logA.Len())

	// Anti-entropy runs every AEInterval (10 s by default) on each node.
	run(30 * time.Second)
	fmt.Printf("with anti-entropy: b logged %d of a's %d messages\n", logB.Len(), logA.Len())
	sa, sb := a.Status(), b.Status()
	fmt.Println("same Merkle root:", sa.MerkleRoot == sb.MerkleRoot, "over", sb.LogMessages, "messages")
	fmt.Println("delivered to b's subscriber:", len(sub.C))
	// Output:
	// gossip alone: b logged 0 of a's 20 messages
	// with anti-entropy: b logged 20 of a's 20 messages
	// same Merkle root: true over 20 messages
	// delivered to b's subscriber: 20
}
