package node

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/transport"
)

// A node started with no peers says so, once, with what would give it
// some; one with peers does not.
func TestStartWithoutPeersSaysSo(t *testing.T) {
	c := newMemNetwork(t, transport.NetworkConfig{})
	logs := &lockedBuffer{}
	lone := c.newNode(0, Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, lone.Start())
	require.Equal(t, 1, strings.Count(logs.String(), "no peers: this node gossips with nobody; give it peers (--peers, --peers-file or --join)"), logs.String())

	logs2 := &lockedBuffer{}
	withPeers := c.newNode(1, Config{Registry: c.peersBut(1, 2), Logger: slog.New(slog.NewTextHandler(logs2, nil))})
	require.NoError(t, withPeers.Start())
	require.NotContains(t, logs2.String(), "no peers")
}
