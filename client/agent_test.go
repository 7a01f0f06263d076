package client_test

// A real agent for the tests and examples: an embedded node on 127.0.0.1
// serving its API over TCP, as hearsay agent does.

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/node"
)

// testAgent is a running node and its API server.
type testAgent struct {
	node   *node.Node
	server *http.Server
	addr   string // the API's host:port
	done   chan struct{}
	once   sync.Once
}

// startAgent starts a node with nc and serves its API with api on addr
// ("127.0.0.1:0" for any port). Gossip binds 127.0.0.1:0 unless nc says
// otherwise; nothing is logged unless nc has a Logger.
func startAgent(nc node.Config, api node.APIConfig, addr string) (*testAgent, error) {
	if nc.Bind == "" {
		nc.Bind = "127.0.0.1:0"
	}
	if nc.Logger == nil {
		nc.Logger = slog.New(slog.DiscardHandler)
	}
	if nc.DataDir == "" {
		nc.Filter = node.FilterMemory
	}
	ln, err := node.ListenAPI(addr)
	if err != nil {
		return nil, err
	}
	n, err := node.New(nc)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if err := n.Start(); err != nil {
		n.Close()
		ln.Close()
		return nil, err
	}
	a := &testAgent{node: n, addr: ln.Addr().String(), done: make(chan struct{}),
		server: node.NewAPIServer(node.NewAPI(n, api), node.APIServerConfig{})}
	go func() {
		defer close(a.done)
		a.server.Serve(ln)
	}()
	return a, nil
}

// stop ends the API's streams with "node shutting down", then closes the
// server and the node. Calls after the first do nothing.
func (a *testAgent) stop() {
	a.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if a.server.Shutdown(ctx) != nil {
			a.server.Close()
		}
		<-a.done
		a.node.Close()
	})
}

// runAgent starts an agent for the test, stopped when it ends.
func runAgent(t *testing.T, nc node.Config, api node.APIConfig) *testAgent {
	t.Helper()
	a, err := startAgent(nc, api, "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(a.stop)
	return a
}

// freeAddr returns a 127.0.0.1 address of the network ("tcp" or "udp")
// that was free a moment ago.
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}
