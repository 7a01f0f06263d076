package dht_test

import (
	"fmt"
	"log"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/transport"
)

// Twenty nodes join through the first one, over the in-memory network and
// its virtual clock; the node runtime does the same over UDP.
func Example() {
	network := transport.NewNetwork(transport.NetworkConfig{Seed: 1, Latency: 10 * time.Millisecond})
	first := netip.MustParseAddrPort("10.0.0.1:7600")
	var registries []*dht.Registry
	for i := range 20 {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 7600)
		var id gossip.NodeID // random in a real node, kept in its data directory
		id[0], id[1] = byte(i*37+11), byte(i)
		cfg := dht.Config{Self: id, SelfAddr: addr, Rand: rand.New(rand.NewPCG(uint64(i), 1))}
		if i > 0 {
			cfg.Bootstrap = []netip.AddrPort{first} // --join
		}
		reg, err := dht.NewRegistry(cfg)
		if err != nil {
			log.Fatal(err)
		}
		registries = append(registries, reg)

		var ep *transport.Endpoint
		send := func(rd dht.Ready) {
			for _, d := range rd.Datagrams {
				_ = ep.Send(d.To, d.Data) // sealed first when the cluster is encrypted
			}
		}
		ep, err = network.Attach(addr, func(from netip.AddrPort, datagram []byte) {
			send(reg.Handle(network.Now(), from, datagram))
		})
		if err != nil {
			log.Fatal(err)
		}
		var tick func()
		tick = func() { // a timer set to NextTick, in the node runtime
			send(reg.Tick(network.Now()))
			network.At(reg.NextTick(), tick)
		}
		network.At(network.Now(), tick)
		network.RunUntil(network.Now().Add(100 * time.Millisecond))
	}
	network.RunUntil(network.Now().Add(30 * time.Second))

	everyone := true
	for _, reg := range registries {
		everyone = everyone && len(reg.Peers()) == 19
	}
	fmt.Println("every node knows the 19 others:", everyone)
	fmt.Println("first node's buckets:", len(registries[0].Buckets()))
	gossipPeers := registries[0].SamplePeers(rand.New(rand.NewPCG(1, 2)), 3, nil)
	fmt.Println("gossip peers this round:", len(gossipPeers))
	// Output:
	// every node knows the 19 others: true
	// first node's buckets: 6
	// gossip peers this round: 3
}
