package merkle_test

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hearsay-io/hearsay/merkle"
	"github.com/hearsay-io/hearsay/wire"
)

// id makes a message ID the way hearsay does: a SHA-256 prefix.
func id(i int) merkle.ID {
	sum := sha256.Sum256(fmt.Appendf(nil, "message %d", i))
	return merkle.ID(sum[:16])
}

// Two replicas that each missed a few messages find out which, in a few
// round trips. The loop stands in for the network.
func Example() {
	local, _ := merkle.NewTree(merkle.TreeConfig{})
	remote, _ := merkle.NewTree(merkle.TreeConfig{})
	for i := range 10_000 {
		if i%1000 != 1 {
			local.Insert(id(i))
		}
		if i%1000 != 2 {
			remote.Insert(id(i))
		}
	}

	responder, _ := merkle.NewResponder(remote, merkle.ResponderConfig{})
	session, _ := merkle.NewSession(local, merkle.SessionConfig{Rand: rand.New(rand.NewPCG(1, 2))})
	now := time.Unix(0, 0)
	session.Start(now)
	roundTrips := 0
	for !session.Done() {
		roundTrips++
		for _, query := range session.Ready() {
			// Sent to the peer, answered, sent back; each side parses the
			// header once and hands the body on.
			_, qbody, _ := wire.Parse(query)
			answer, _ := responder.AnswerV2(nil, qbody)
			_, abody, _ := wire.Parse(answer)
			session.Handle(now, abody)
		}
	}
	res := session.Result()
	fmt.Println("error:", res.Err)
	fmt.Println("missing here:", len(res.Missing), "missing there:", len(res.Extra))
	fmt.Println("round trips:", roundTrips)

	for _, m := range res.Missing {
		local.Insert(m) // once pulled
	}
	for _, e := range res.Extra {
		remote.Insert(e) // once pushed
	}
	fmt.Println("same roots:", local.Root() == remote.Root())
	// Output:
	// error: <nil>
	// missing here: 10 missing there: 10
	// round trips: 3
	// same roots: true
}
