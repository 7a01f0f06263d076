package gossip_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/gossip/gossiptest"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/hearsay-io/hearsay/wire"
)

// A mixed cluster: nodes 0 to 2 sign, nodes 3 to 5 play nodes built before
// statements (they drop a datagram holding one as malformed, and do not
// announce statements in their pulls). The old
// nodes are never sent a statement, by gossip or anti-entropy, and deliver
// the signing origins' messages, unverified; the signing nodes verify
// every one.
func TestOldNodesGetNoStatements(t *testing.T) {
	const nodes, old = 6, 3
	log := withLog(500 * time.Millisecond)
	c := gossiptest.New(t, gossiptest.Config{Nodes: nodes, Sign: true, Network: transport.NetworkConfig{Seed: 11, Loss: 0.1}, Core: func(i int, cfg *gossip.Config) {
		log(i, cfg)
		if i >= old {
			cfg.SigningKey = nil
			gossip.PredatesStatements(cfg)
		}
	}})
	var toOld, toSigning, statementsToSigning int
	c.Intercept = func(p gossiptest.Packet) bool {
		if p.Type() != wire.Messages {
			return false
		}
		n := gossip.Statements(p.Data)
		if p.To >= old {
			toOld++
			require.Zero(t, n, "a statement sent to old node %d by node %d", p.To, p.From)
		} else {
			toSigning++
			statementsToSigning += n
		}
		return false
	}
	var want []gossip.Message
	for i := range 60 {
		want = append(want, c.Push(i%2, fmt.Sprintf("mixed.%d", i), []byte{byte(i)}))
		c.Run(30 * time.Millisecond)
	}
	require.True(t, c.RunUntil(30*time.Second, c.AllDelivered(len(want))))
	c.Run(3 * time.Second) // anti-entropy sessions between old and signing nodes
	for i := range nodes {
		requireOnceEach(t, c.Delivered(i))
		require.Len(t, c.Delivered(i), len(want), "node %d", i)
		require.Zero(t, c.Core(i).Stats().Dropped[gossip.DropMalformed], "node %d", i)
		if i < old {
			others := 0
			for _, m := range want {
				if m.Origin != c.Core(i).ID() {
					others++
				}
			}
			require.Equal(t, uint64(others), c.Core(i).TrustStats().Verified, "node %d", i)
		} else {
			require.Zero(t, c.Core(i).TrustStats().StatementsIn, "node %d", i)
		}
	}
	require.NotZero(t, toOld)
	require.NotZero(t, toSigning)
	require.NotZero(t, statementsToSigning)
}

// The statements option rides in a pull as one more origin entry, before
// the long-poll option; a decoder reads it back, and one that predates it
// reads an origin entry.
func TestStatementsOptionRoundTrip(t *testing.T) {
	req := &gossip.PullRequest{
		Origins:    []gossip.OriginRanges{{Origin: 7, Ranges: []gossip.SeqRange{{First: 1, End: 3}}}},
		LongPoll:   gossip.LongPoll{Park: 400 * time.Millisecond, SkipFresh: true},
		Statements: true,
	}
	d := gossip.AppendPullRequest(nil, req)
	require.Equal(t, []byte{
		0x48, 0x53, 0x01, 0x01, 0x00, 0x00, 0x03, // header, partition, 3 entries
		0, 0, 0, 0, 0, 0, 0, 7, 0x01, 0x01, 0x02, // origin 7: [1, 3)
		0x68, 0x73, 0x2e, 0x73, 0x74, 0x6d, 0x74, 0x73, 0x01, 0x01, 0x01, // "hs.stmts": version 1
		0x68, 0x73, 0x2e, 0x6c, 0x70, 0x6f, 0x6c, 0x6c, 0x01, 0x90, 0x03, 0x02, // "hs.lpoll"
	}, d)
	got, err := gossip.DecodePullRequest(d)
	require.NoError(t, err)
	require.True(t, got.Statements)
	require.Equal(t, req.LongPoll, got.LongPoll)
	require.Equal(t, req.Origins, got.Origins)

	// Twice, with another range or before an origin is malformed.
	head := func(n byte) []byte { return []byte{0x48, 0x53, 0x01, 0x01, 0x00, 0x00, n} }
	option, origin := d[18:29], d[7:18]
	for _, bad := range [][]byte{
		append(append(head(2), option...), option...),
		append(append(head(1), d[18:27]...), 0x01, 0x02),
		append(append(head(1), d[18:27]...), 0x02, 0x01),
		append(append(head(2), option...), origin...),
	} {
		_, err = gossip.DecodePullRequest(bad)
		require.ErrorIs(t, err, wire.ErrMalformed, "% x", bad)
	}
}
