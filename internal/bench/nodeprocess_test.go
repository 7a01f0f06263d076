package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// specLine is the node command of node index of a small cluster.
func specLine(t *testing.T, system System, index, nodes int) string {
	t.Helper()
	cfg := Config{Nodes: nodes, Messages: 5, Size: 64, Interval: 50 * time.Millisecond, Fanout: 3}
	line, err := appendCommand(nil, command{kind: cmdNode, spec: newNodeSpec(cfg, system, nil, index)})
	require.NoError(t, err)
	return string(line)
}

// syncBuffer is a bytes.Buffer safe for the report writer's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestServeNodeMalformedInput(t *testing.T) {
	node0 := specLine(t, Hearsay, 0, 2)
	for name, tc := range map[string]struct {
		input string
		want  string
	}{
		"unknown command":   {"hello\n", `unknown command "hello"`},
		"publish first":     {"publish 1\n", `the first command must be node, got "publish 1"`},
		"bad spec":          {"node {\n", "node: bad spec"},
		"bad spec values":   {`node {"system":"hearsay","index":5,"nodes":2,"messages":5,"size":64,"interval_ns":50000000,"fanout":3}` + "\n", "index must be between 0 and 1, got 5"},
		"two nodes":         {node0 + node0, "a node process runs one node"},
		"publish too early": {node0 + "publish 1\n", `"publish 1" before peers`},
		"counters early":    {node0 + "counters\n", `"counters" before peers`},
		"too few peers":     {node0 + "peers 127.0.0.1:1\n", "want the 2 nodes' addresses, got 1"},
		"not its address":   {node0 + "peers 127.0.0.1:1 127.0.0.1:2\n", "address 0 is 127.0.0.1:1, not this node's"},
		"peers elsewhere":   {node0 + "peers 127.0.0.1:1 10.1.1.1:2\n", "not on the loopback interface"},
		"line too long":     {strings.Repeat("x", maxCommandLine+1) + "\n", "a command longer than 65536 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			var out syncBuffer
			err := ServeNode(context.Background(), strings.NewReader(tc.input), &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			if strings.HasPrefix(tc.input, node0) {
				assert.Regexp(t, `^addr 127\.0\.0\.1:\d+\n`, out.String())
			}
		})
	}
}

func TestServeNodeInputEnds(t *testing.T) {
	var out syncBuffer
	require.NoError(t, ServeNode(context.Background(), strings.NewReader(""), &out))
	assert.Empty(t, out.String())

	// The parent hangs up once the node is bound: it stops, and says nothing more.
	require.NoError(t, ServeNode(context.Background(), strings.NewReader(specLine(t, Memberlist, 1, 3)), &out))
	assert.Regexp(t, `^addr 127\.0\.0\.1:\d+\n$`, out.String())
}

func TestServeNodeContextEnds(t *testing.T) {
	in, inW := io.Pipe()
	defer inW.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeNode(ctx, in, io.Discard) }()
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("ServeNode did not return when its context ended")
	}
}

// servedNode is a node run by ServeNode in this process, driven as the
// parent drives a node process.
type servedNode struct {
	in      *io.PipeWriter
	reports chan report
	done    chan error
}

func serveNode(t *testing.T) *servedNode {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &servedNode{in: inW, reports: make(chan report, 1024), done: make(chan error, 1)}
	go func() {
		err := ServeNode(context.Background(), inR, outW)
		outW.Close()
		s.done <- err
	}()
	go func() {
		defer close(s.reports)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, maxReportLine)
		for sc.Scan() {
			var r report
			if err := parseReport(sc.Bytes(), &r); err != nil {
				t.Errorf("bad report %q: %v", sc.Text(), err)
				return
			}
			s.reports <- r
		}
	}()
	t.Cleanup(func() { inW.Close() })
	return s
}

func (s *servedNode) send(t *testing.T, line string) {
	t.Helper()
	_, err := io.WriteString(s.in, line)
	require.NoError(t, err)
}

// next returns the next report, and fails if none comes in time.
func (s *servedNode) next(t *testing.T) report {
	t.Helper()
	select {
	case r, ok := <-s.reports:
		require.True(t, ok, "the node process's output ended")
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no report")
		return report{}
	}
}

// Two nodes of each system served by ServeNode, through the whole
// protocol: bind, connect, publish, deliver, count, stop.
func TestServeNodeSession(t *testing.T) {
	for _, system := range Systems {
		t.Run(string(system), func(t *testing.T) {
			nodes := []*servedNode{serveNode(t), serveNode(t)}
			addrs := make([]string, len(nodes))
			for i, n := range nodes {
				n.send(t, specLine(t, system, i, len(nodes)))
				r := n.next(t)
				require.Equal(t, repAddr, r.kind)
				addrs[i] = r.addr
			}
			peers := fmt.Sprintf("peers %s %s\n", addrs[0], addrs[1])
			for _, n := range nodes { // all first: a memberlist node is ready once the other joined
				n.send(t, peers)
			}
			for _, n := range nodes {
				assert.Equal(t, repReady, n.next(t).kind)
			}
			before := time.Now().UnixNano()
			for i := range 5 {
				nodes[0].send(t, fmt.Sprintf("publish %d\n", i))
			}

			// Node 0 reports its publishes and both report every delivery,
			// once each.
			published := map[int]bool{}
			delivered := []map[int]bool{{}, {}}
			for i, n := range nodes {
				for len(delivered[i]) < 5 || (i == 0 && len(published) < 5) {
					r := n.next(t)
					switch r.kind {
					case repPublished:
						require.Equal(t, 0, i, "only the origin publishes")
						assert.False(t, published[r.index], "message %d published twice", r.index)
						published[r.index] = true
						assert.GreaterOrEqual(t, r.sent, before)
						assert.GreaterOrEqual(t, r.returned, r.sent)
					case repDelivered:
						for _, d := range r.deliveries {
							assert.False(t, delivered[i][d.index], "node %d: message %d delivered twice", i, d.index)
							delivered[i][d.index] = true
							assert.GreaterOrEqual(t, d.at, before)
						}
					default:
						t.Fatalf("unexpected report %+v", r)
					}
				}
			}

			for _, n := range nodes {
				n.send(t, "counters\n")
				var r report
				for r = n.next(t); r.kind == repDelivered; r = n.next(t) {
					// late duplicates are not reported, but be lenient with order
				}
				require.Equal(t, repCounters, r.kind)
				assert.Positive(t, r.counters.BytesOut)
				assert.True(t, r.counters.CPUKnown)
				assert.Positive(t, r.counters.CPUNS)
			}

			for _, n := range nodes {
				n.in.Close()
				select {
				case err := <-n.done:
					require.NoError(t, err)
				case <-time.After(30 * time.Second):
					t.Fatal("ServeNode did not return once its input ended")
				}
			}
		})
	}
}
