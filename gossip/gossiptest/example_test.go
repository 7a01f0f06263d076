package gossiptest_test

import (
	"fmt"
	"log"
	"time"

	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/hearsay-io/hearsay/wire"
)

// Five cores on a network that loses one datagram in ten: a message
// reaches them all, a partition holds one back until it heals, and a
// restarted core with an in-memory seen filter takes what is still
// offered for new.
func Example() {
	// A test passes its *testing.T; an example has a *log.Logger.
	c := gossiptest.New(log.Default(), gossiptest.Config{
		Nodes:   5,
		Network: transport.NetworkConfig{Seed: 1, Loss: 0.1},
	})
	pulls := 0
	c.Intercept = func(p gossiptest.Packet) bool {
		if p.Type() == wire.Pull {
			pulls++
		}
		return false // drop nothing
	}

	start := c.Now()
	c.Push(0, "news.sport", []byte("goal"))
	ok := c.RunUntil(10*time.Second, c.AllDelivered(1))
	fmt.Printf("everywhere: %v, after %v and %d pulls\n", ok, c.Now().Sub(start), pulls)

	c.Partition(func(i int) int {
		if i == 4 {
			return 1
		}
		return 0
	})
	c.Push(1, "news.sport", []byte("another goal"))
	c.Run(2 * time.Second)
	fmt.Println("core 4 during the partition:", len(c.Delivered(4)))
	c.Heal()
	ok = c.RunUntil(10*time.Second, c.AllDelivered(2))
	fmt.Println("core 4 after it:", len(c.Delivered(4)), ok)

	c.Restart(2)
	c.Run(time.Second)
	fmt.Println("core 2, restarted:", len(c.Delivered(2)), "deliveries,", c.Core(2).Stats().Delivered, "since the restart")
	// Output:
	// everywhere: true, after 96.552724ms and 9 pulls
	// core 4 during the partition: 1
	// core 4 after it: 2 true
	// core 2, restarted: 4 deliveries, 2 since the restart
}
