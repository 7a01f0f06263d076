package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/hearsay-io/hearsay/wire"
)

// Four signing nodes and an insider holding the passphrase (a raw peer in
// every node's registry) that forges sealed messages under node 0's origin
// and sequence numbers: no node delivers a forgery, every node delivers
// node 0's messages, and the nodes that got forgeries count them and ban
// the insider, as /v1/peers shows.
func TestSigningNodesRefuseAnInsidersForgeries(t *testing.T) {
	const nodes = 4
	c := newMemNetwork(t, transport.NetworkConfig{})
	ring := ringFor(t, "the cluster passphrase")
	insider := c.rawPeer(memAddr(nodes))
	for i := range nodes {
		c.nodes = append(c.nodes, c.newNode(i, Config{Name: fmt.Sprintf("n%d", i), Registry: c.peersBut(i, nodes+1),
			Keyring: ring, Sign: true}))
	}
	for _, nd := range c.nodes {
		require.NoError(t, nd.Start())
	}
	boxes := c.inboxes()
	want := map[gossip.MessageID]bool{}
	for i := range 20 {
		id, err := c.nodes[0].Publish(context.Background(), "orders", []byte(fmt.Sprintf("genuine %d", i)))
		require.NoError(t, err)
		want[id] = true
	}
	seqs := []uint64{}
	for _, m := range boxes[0].read().all {
		seqs = append(seqs, m.Seq)
	}
	require.Len(t, seqs, 20)

	sealer := security.NewSealer(ring, security.SealerConfig{})
	origin := c.nodes[0].ID()
	created := c.net.Now().UnixMilli()
	for _, v := range []int{1, 2} {
		for _, seq := range seqs[5:15] {
			d := appendRawMessage(wire.AppendHeader(nil, wire.Messages), origin, seq, created, "orders", []byte("forged"))
			sealed, err := sealer.Seal(nil, d, c.net.Now())
			require.NoError(t, err)
			require.NoError(t, insider.ep.Send(memAddr(v), sealed))
		}
	}
	c.waitFor(time.Minute, func() bool {
		for _, b := range boxes {
			if b.distinct() < len(want) {
				return false
			}
		}
		return true
	})
	c.run(15 * time.Second) // past the wait for a statement
	for i, b := range boxes {
		b.requireOnce(t, want, "node %d", i)
	}
	for _, v := range []int{1, 2} {
		st := c.nodes[v].Stats()
		forged := st.Gossip.Dropped[gossip.DropBadSignature] + st.Gossip.Dropped[gossip.DropUnsigned]
		require.Equal(t, uint64(10), forged, "node %d counts every forgery", v)
		info := c.nodes[v].PeersInfo()
		require.Len(t, info.Penalised, 1, "node %d", v)
		p := info.Penalised[0]
		require.Equal(t, memAddr(nodes).String(), p.Addr)
		require.Equal(t, uint64(10), p.Offences)
		require.NotEmpty(t, p.BannedFor, "node %d bans the insider", v)
		require.Equal(t, 1, st.Trust.PeersBanned)
		require.Positive(t, st.Trust.Verified)
	}
	for _, i := range []int{0, 3} {
		require.Empty(t, c.nodes[i].PeersInfo().Penalised, "node %d got no forgery", i)
	}
}

// appendRawMessage encodes a message as docs/protocol.md's MESSAGES says.
func appendRawMessage(dst []byte, origin gossip.NodeID, seq uint64, created int64, topic string, payload []byte) []byte {
	dst = append(dst, origin[:]...)
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, uint64(created))
	dst = append(dst, byte(len(topic)))
	dst = append(dst, topic...)
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}
