package memberlist_test

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/netip"
	"time"

	"github.com/hearsay-io/hearsay/registry/memberlist"
)

// Three members on this machine: the second and third join through the
// first, and each ends up with the other two's gossip addresses as peers.
func Example() {
	var members []*memberlist.Registry
	for i, name := range []string{"alpha", "bravo", "charlie"} {
		reg, err := memberlist.New(memberlist.Config{
			Name:       name,
			GossipAddr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(7600+10*i)),
			BindAddr:   "127.0.0.1",
			BindPort:   0, // any free port; a node uses its gossip port + 2
			Profile:    memberlist.ProfileLocal,
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			log.Fatal(err)
		}
		defer reg.Shutdown()
		if i > 0 {
			// --join takes memberlist addresses, as serf agent -join does.
			if _, err := reg.Join([]string{members[0].Addr().String()}); err != nil {
				log.Fatal(err)
			}
		}
		members = append(members, reg)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(members[0].Peers()) == 2 && len(members[2].Peers()) == 2 {
			break
		}
	}
	fmt.Println("alpha's peers:", members[0].Peers())
	fmt.Println("charlie's peers:", members[2].Peers())

	// A graceful exit: the others drop bravo at once.
	_ = members[1].Leave(time.Second)
	_ = members[1].Shutdown()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(members[0].Peers()) == 1 {
			break
		}
	}
	fmt.Println("alpha's peers after bravo left:", members[0].Peers())
	// Output:
	// alpha's peers: [127.0.0.1:7610 127.0.0.1:7620]
	// charlie's peers: [127.0.0.1:7600 127.0.0.1:7610]
	// alpha's peers after bravo left: [127.0.0.1:7620]
}
