package gossip_test

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/registry/static"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/hearsay-io/hearsay/wire"
)

func signed(t *testing.T, n int, loss float64, tweak func(i int, c *gossip.Config)) *gossiptest.Cluster {
	return gossiptest.New(t, gossiptest.Config{Nodes: n, Sign: true, Network: transport.NetworkConfig{Seed: 7, Loss: loss}, Core: tweak})
}

func requireNoForgeryDrops(t *testing.T, c *gossiptest.Cluster) {
	t.Helper()
	for i := range c.Len() {
		s := c.Core(i).Stats()
		require.Zero(t, s.Dropped[gossip.DropBadSignature], "node %d", i)
		require.Zero(t, s.Dropped[gossip.DropUnsigned], "node %d", i)
		require.Zero(t, c.Core(i).PendingMessages(), "node %d", i)
	}
}

// A signing cluster delivers every message everywhere once, statements
// never; at a low rate each message gets its own statement, in a burst one
// statement covers many.
func TestSignedClusterDeliversEverything(t *testing.T) {
	c := signed(t, 6, 0.05, nil)
	var want []gossip.Message
	for i := range 20 { // a low rate: one statement per message
		want = append(want, c.Push(i%2, fmt.Sprintf("slow.%d", i), []byte{byte(i)}))
		c.Run(50 * time.Millisecond)
	}
	require.Equal(t, uint64(10), c.Core(0).TrustStats().StatementsOut)
	for i := range 200 { // a burst at one instant: a statement per window
		want = append(want, c.Push(0, "fast", []byte{byte(i), 1}))
	}
	require.True(t, c.RunUntil(30*time.Second, c.AllDelivered(len(want))))
	c.Run(2 * time.Second)
	require.Equal(t, uint64(15), c.Core(0).TrustStats().StatementsOut, "the burst: four at once (signBurst), one at the window's end")
	for i := range c.Len() {
		requireOnceEach(t, c.Delivered(i))
		require.Len(t, c.Delivered(i), len(want), "node %d", i)
		if i >= 2 {
			require.Equal(t, uint64(len(want)), c.Core(i).TrustStats().Verified, "node %d", i)
			require.Equal(t, uint64(15+10), c.Core(i).TrustStats().StatementsIn, "node %d", i)
		}
	}
	requireNoForgeryDrops(t, c)
}

// Large messages' chunks are covered like other messages.
func TestSignedLargeMessage(t *testing.T) {
	c := signed(t, 4, 0.02, nil)
	small := c.Push(0, "small", []byte("first"))
	big := c.Push(0, "big", gossip.RandomPayload(1, 100_000))
	require.True(t, c.RunUntil(30*time.Second, c.AllDelivered(2)))
	for i := range c.Len() {
		got := c.Delivered(i)
		require.Len(t, got, 2)
		require.Equal(t, small.ID, got[0].ID)
		require.Equal(t, big.ID, got[1].ID)
		require.Equal(t, big.Payload, got[1].Payload)
	}
	requireNoForgeryDrops(t, c)
}

// Messages repaired by anti-entropy, statements among them, are verified
// like others.
func TestSignedAntiEntropyRepair(t *testing.T) {
	c := signed(t, 4, 0, withLog(time.Second))
	c.Partition(func(i int) int {
		if i == 3 {
			return 1
		}
		return 0
	})
	for i := range 30 {
		c.Push(i%2, "cut.off", []byte{byte(i)})
		c.Run(20 * time.Millisecond)
	}
	c.Run(3 * time.Second) // gossip gives up on node 3 (CacheRounds 3)
	require.Empty(t, c.Delivered(3))
	c.Heal()
	require.True(t, c.RunUntil(60*time.Second, c.AllDelivered(30)))
	require.NotZero(t, c.Core(3).Stats().AEMissing)
	require.Equal(t, uint64(30), c.Core(3).TrustStats().Verified)
	requireOnceEach(t, c.Delivered(3))
	requireNoForgeryDrops(t, c)
}

// An insider holding the passphrase (node 5, speaking raw datagrams) forges
// messages under node 0's origin and its sequence numbers, unsigned, with a
// statement signed by a key not node 0's, and with node 0's key but a bad
// signature. No node delivers a forgery, node 0's genuine messages at those
// numbers are delivered everywhere, and every node that got forgeries
// penalises the forger, which ends up banned from their pulls.
func TestForgeriesAreNeverDelivered(t *testing.T) {
	const nodes, forger = 6, 5
	c := signed(t, nodes, 0, nil)
	origin := c.Core(0).ID()
	now := c.Now().UnixMilli()
	var genuine []gossip.Message
	for i := range 40 {
		genuine = append(genuine, c.Push(0, "orders", []byte(fmt.Sprintf("genuine %d", i))))
	}
	// The forgeries reach the victims before any genuine message does.
	victims := []int{1, 2, 3, 4}
	forgerAddr := gossiptest.Addr(forger)
	var forged []gossip.MessageID
	send := func(d []byte) {
		for _, v := range victims {
			c.Handle(v, forgerAddr, d)
		}
	}
	for _, m := range genuine[1:11] { // unsigned, at genuine numbers
		d := gossip.AppendMessage(wire.AppendHeader(nil, wire.Messages), origin, m.Seq, now, "orders", []byte("forged"))
		forged = append(forged, gossip.ComputeMessageID(origin, m.Seq, now, "orders", []byte("forged")))
		send(d)
	}
	// A forgery at the number of node 0's first statement: it must not
	// hide the statement (and hold back the message it covers) for long.
	slot := genuine[0].Seq + 1
	require.Equal(t, slot+1, genuine[1].Seq, "the first message is signed at once")
	send(gossip.AppendMessage(wire.AppendHeader(nil, wire.Messages), origin, slot, now, "orders", []byte("forged slot")))
	forged = append(forged, gossip.ComputeMessageID(origin, slot, now, "orders", []byte("forged slot")))
	// Forgeries at numbers node 0 never used, with a statement signed by
	// the forger's own key, and one with node 0's key and a broken signature.
	var ids []gossip.MessageID
	d := wire.AppendHeader(nil, wire.Messages)
	base := genuine[len(genuine)-1].Seq + 1000
	for k := range uint64(3) {
		d = gossip.AppendMessage(d, origin, base+k, now, "orders", []byte("forged ahead"))
		id := gossip.ComputeMessageID(origin, base+k, now, "orders", []byte("forged ahead"))
		ids = append(ids, id)
		forged = append(forged, id)
	}
	d = gossip.AppendStatement(d, gossiptest.Key(forger), origin, base+3, now, 3, gossip.RangeHash(ids), true)
	send(d)
	bad := gossip.AppendStatement(nil, gossiptest.Key(0), origin, base+3, now, 3, gossip.RangeHash(ids), true)
	bad[len(bad)-1] ^= 1
	send(append(wire.AppendHeader(nil, wire.Messages), bad...))
	for _, v := range victims {
		require.Equal(t, 3+10+1, c.Core(v).PendingMessages(), "node %d holds the forgeries back", v)
		require.Empty(t, c.Delivered(v))
		require.Equal(t, uint64(2), c.Core(v).Stats().Dropped[gossip.DropBadSignature], "node %d: both statements", v)
	}

	require.True(t, c.RunUntil(3*time.Second, c.AllDelivered(len(genuine))), "well before the forgeries expire")
	c.Run(15 * time.Second) // the unsigned forgeries wait out their bound
	isForged := map[gossip.MessageID]bool{}
	for _, id := range forged {
		isForged[id] = true
	}
	for i := range nodes {
		got := c.Delivered(i)
		requireOnceEach(t, got)
		require.Len(t, got, len(genuine), "node %d", i)
		for k, m := range got {
			require.False(t, isForged[m.ID], "node %d delivered a forgery", i)
			require.Equal(t, genuine[k].ID, m.ID, "node %d, in order", i)
		}
		require.Zero(t, c.Core(i).PendingMessages(), "node %d", i)
	}
	for _, v := range victims {
		s := c.Core(v).Stats()
		require.Equal(t, uint64(2+10+1), s.Dropped[gossip.DropBadSignature], "node %d: 2 statements, 11 forged messages", v)
		require.Equal(t, uint64(3), s.Dropped[gossip.DropUnsigned], "node %d: 3 never signed", v)
		ps := c.Core(v).Penalties()
		require.Len(t, ps, 1, "node %d penalises the forger alone", v)
		require.Equal(t, forgerAddr, ps[0].Peer)
		require.Equal(t, uint64(2+10+1+3), ps[0].Offences)
		require.NotZero(t, ps[0].Banned, "node %d bans the forger", v)
	}
	for _, i := range []int{0, forger} {
		require.Empty(t, c.Core(i).Penalties(), "node %d got no forgery", i)
	}
}

// A signing node accepts no message its origin did not sign; a node that
// does not sign relays statements, and never delivers them.
func TestSigningAndNonSigningNodes(t *testing.T) {
	c := gossiptest.New(t, gossiptest.Config{Nodes: 3, Network: transport.NetworkConfig{Seed: 3}, Core: func(i int, gc *gossip.Config) {
		if i < 2 {
			gc.SigningKey = gossiptest.Key(i)
			gc.ID = gossip.NodeIDOf(gc.SigningKey.Public().(ed25519.PublicKey))
			// Through node 2 only.
			peers, err := static.New(static.Config{Peers: []string{gossiptest.Addr(2).String()}, Resolve: netip.ParseAddrPort})
			require.NoError(t, err)
			gc.Peers = peers
		}
	}})
	statements := 0
	c.Intercept = func(p gossiptest.Packet) bool {
		if p.From == 2 {
			statements += gossip.Statements(p.Data)
		}
		return false
	}
	signedMsg := c.Push(0, "signed", []byte("a"))
	c.Push(2, "unsigned", []byte("b"))
	c.Run(15 * time.Second) // past the wait for a statement, 60 rounds
	require.Len(t, c.Delivered(2), 2, "the non-signing node gets the signed message, and its own")
	require.Equal(t, signedMsg.ID, c.Delivered(2)[1].ID)
	require.Len(t, c.Delivered(1), 1, "the signing node refuses the unsigned one")
	require.Equal(t, signedMsg.ID, c.Delivered(1)[0].ID)
	require.NotZero(t, c.Core(1).Stats().Dropped[gossip.DropUnsigned])
	require.NotZero(t, statements, "node 2 relays statements")
}
