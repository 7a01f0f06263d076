package static_test

import (
	"fmt"
	"log"
	"math/rand/v2"
	"net/netip"

	"github.com/hearsay-io/hearsay/registry/static"
)

func Example() {
	peers, err := static.New(static.Config{
		Peers: []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946", "10.0.0.4:7946"},
		Self:  netip.MustParseAddrPort("10.0.0.4:7946"), // this node
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("peers:", peers.Peers())

	// A seeded source gives the same choice on every run; a node seeds it
	// once at start.
	rng := rand.New(rand.NewPCG(1, 2))
	fanout := make([]netip.AddrPort, 0, 2) // reused every gossip round
	fanout = peers.SamplePeers(rng, 2, fanout[:0])
	fmt.Println("this round:", fanout)
	// Output:
	// peers: [10.0.0.1:7946 10.0.0.2:7946 10.0.0.3:7946]
	// this round: [10.0.0.3:7946 10.0.0.2:7946]
}
