package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/transport"
	"github.com/hearsay-io/hearsay/wire"
)

var fastKDF = security.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func ringFor(t *testing.T, passphrases ...string) *security.Keyring {
	var keys []security.Key
	for _, p := range passphrases {
		k, err := security.DeriveKey([]byte(p), "hearsay", fastKDF)
		require.NoError(t, err)
		keys = append(keys, k)
	}
	r, err := security.NewKeyring(keys...)
	require.NoError(t, err)
	return r
}

// Two clusters on one network, every node listing every other, with
// different passphrases: nothing crosses, and the drops are counted.
func TestTwoClustersWithDifferentKeysExchangeNothing(t *testing.T) {
	c := newMemCluster(t, 6, func(i int, c *Config) {
		if i < 3 {
			c.Keyring = ringFor(t, "passphrase of cluster A")
		} else {
			c.Keyring = ringFor(t, "passphrase of cluster B")
		}
	})
	for _, nd := range c.nodes {
		require.True(t, nd.Encrypted())
	}
	eachHalfHearsOnlyItself(t, c, "a", "b", "cluster's")
	for i := range c.nodes {
		require.NotZero(t, c.nodes[i].Stats().Drops["unknown_key"], "node %d counts the other cluster's datagrams", i)
	}
}

// One passphrase, two cipher suites: each half delivers among itself, and
// the other half's datagrams are counted as wrong_cipher, not as failed
// authentication.
func TestCipherSuitesDoNotMix(t *testing.T) {
	logs := &lockedBuffer{}
	c := newMemCluster(t, 6, func(i int, c *Config) {
		c.Keyring = ringFor(t, "one passphrase, two suites")
		if i >= 3 {
			c.Security.Suite = security.AES256GCM
		}
		if i == 0 {
			c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		}
	})
	eachHalfHearsOnlyItself(t, c, "x", "a", "suite's")
	for i := range c.nodes {
		drops := c.nodes[i].Stats().Drops
		require.NotZero(t, drops["wrong_cipher"], "node %d counts the other suite's datagrams", i)
		require.Zero(t, drops["auth_failed"], "node %d", i)
	}
	require.Contains(t, logs.String(), "the agents' --cipher differs?", "the operator is told which flag")
	require.Equal(t, "xchacha20-poly1305", c.nodes[0].Status().Cipher)
	require.Equal(t, "aes-256-gcm", c.nodes[3].Status().Cipher, "status names the suite")
}

// eachHalfHearsOnlyItself publishes topic first on node 0 and topic second
// on node 3 of a six-node cluster split in halves that cannot open each
// other's datagrams, and checks, long after both have spread, that every
// node got only its own half's message.
func eachHalfHearsOnlyItself(t *testing.T, c *memCluster, first, second, half string) {
	t.Helper()
	boxes := c.inboxes()
	_, err := c.nodes[0].Publish(context.Background(), first, []byte(first))
	require.NoError(t, err)
	_, err = c.nodes[3].Publish(context.Background(), second, []byte(second))
	require.NoError(t, err)
	for i, b := range boxes {
		c.waitFor(10*time.Second, func() bool { return b.distinct() >= 1 }, "node %d", i)
	}
	c.run(40 * c.nodes[0].core.Config().Interval)
	for i, b := range boxes {
		require.Equal(t, 1, b.distinct(), "node %d got only its own %s message", i, half)
		want := first
		if i >= 3 {
			want = second
		}
		require.Equal(t, want, b.all[0].Topic)
	}
}

// A key rotation across five running nodes loses no message published
// during it.
func TestKeyRotationLosesNothing(t *testing.T) {
	t.Parallel()
	const oldPass, newPass = "the old cluster passphrase", "the new cluster passphrase"
	c := newMemCluster(t, 5, func(i int, c *Config) {
		c.Keyring = ringFor(t, oldPass)
		c.KDF = fastKDF
		c.Gossip = fastGossip // a few messages per round, as with the publisher below
	})
	boxes := c.inboxes()
	// A publisher, every 3ms on the network's clock, from node to node.
	published, stopped := 0, false
	var publish func()
	publish = func() {
		if stopped {
			return
		}
		if _, err := c.nodes[published%5].Publish(context.Background(), "rotation", []byte{byte(published)}); err == nil {
			published++
		}
		c.net.AfterFunc(3*time.Millisecond, publish)
	}
	c.net.AfterFunc(3*time.Millisecond, publish)
	step := func() {
		c.run(5 * c.nodes[0].core.Config().Interval)
		for _, b := range boxes {
			b.read() // before their buffers fill
		}
	}
	step()
	var newID security.KeyID
	for _, nd := range c.nodes { // 1. install everywhere
		id, err := nd.InstallPassphrase([]byte(newPass))
		require.NoError(t, err)
		newID = id
		step()
	}
	for _, nd := range c.nodes { // 2. use everywhere
		require.NoError(t, nd.UseKey(newID))
		step()
	}
	oldID, err := security.ParseKeyID(ringFor(t, oldPass).List()[0].ID)
	require.NoError(t, err)
	for _, nd := range c.nodes { // 3. remove the old key
		require.NoError(t, nd.RemoveKey(oldID))
		step()
	}
	n := published
	stopped = true
	require.Greater(t, n, 100)
	for i, b := range boxes {
		c.waitFor(time.Minute, func() bool { return b.distinct() >= n }, "node %d: %d of %d", i, b.distinct(), n)
		b.requireOnce(t, nil, "node %d", i)
	}
	for _, nd := range c.nodes {
		require.Equal(t, []security.KeyInfo{{ID: newID.String(), Primary: true}}, nd.Keys())
	}
}

// rawPeer is a bare endpoint on the in-memory network, for sending crafted
// datagrams; it counts the MESSAGES datagrams (sealed or not) it receives,
// ignoring the node's own pulls.
type rawPeer struct {
	ep                *transport.Endpoint
	datagrams, volume int
}

func (c *memCluster) rawPeer(addr netip.AddrPort) *rawPeer {
	p := &rawPeer{}
	ep, err := c.net.Attach(addr, func(_ netip.AddrPort, d []byte) {
		if len(d) >= 4 && d[3]&0x7f == byte(wire.Messages) {
			p.datagrams++
			p.volume += len(d)
		}
	})
	require.NoError(c.t, err)
	p.ep = ep
	return p
}

// answers returns what came since the last call.
func (p *rawPeer) answers() (datagrams, volume int) {
	datagrams, volume = p.datagrams, p.volume
	p.datagrams, p.volume = 0, 0
	return datagrams, volume
}

// A stranger's pulls are answered with at most three times the bytes it
// sent; a member's are answered in full.
func TestAmplificationLimit(t *testing.T) {
	c := newMemNetwork(t, transport.NetworkConfig{})
	member := c.rawPeer(memAddr(1))
	nd := c.newNode(0, Config{Registry: peersOf(member.ep.Addr())})
	require.NoError(t, nd.Start())
	// 60 answers of ~1 KB.
	for i := 0; i < 60; i++ {
		_, err := nd.Publish(context.Background(), "amp", []byte(strings.Repeat("x", 1000)))
		require.NoError(t, err)
	}
	pull := gossip.AppendPullRequest(nil, &gossip.PullRequest{}) // "I hold nothing"

	// The stranger's pulls carry a digest of 60 origins it claims to hold
	// (none of them ours): ~1.2 KB each, so a 3x allowance lets answers through.
	big := &gossip.PullRequest{}
	for i := 0; i < 60; i++ {
		big.Origins = append(big.Origins, gossip.OriginRanges{Origin: gossip.OriginTag(i + 1), Ranges: []gossip.SeqRange{{First: 1, End: 1 << 40}}})
	}
	strangerPull := gossip.AppendPullRequest(nil, big)
	stranger := c.rawPeer(memAddr(3))
	sent := 0
	for i := 0; i < 20; i++ {
		require.NoError(t, stranger.ep.Send(nd.Addr(), strangerPull))
		sent += len(strangerPull)
	}
	c.run(300 * time.Millisecond)
	_, got := stranger.answers()
	t.Logf("stranger: sent %d bytes, answered %d bytes: factor %.2f", sent, got, float64(got)/float64(sent))
	require.LessOrEqual(t, got, 3*sent, "a stranger gets at most 3x what it sent")
	require.Greater(t, got, sent, "but it is answered within that")
	require.NotZero(t, nd.Stats().Drops["amplification"])

	require.NoError(t, member.ep.Send(nd.Addr(), pull))
	c.run(300 * time.Millisecond)
	_, gotMember := member.answers()
	t.Logf("member: sent %d bytes, answered %d bytes: factor %.0f", len(pull), gotMember, float64(gotMember)/float64(len(pull)))
	require.Greater(t, gotMember, 50*1000, "a member gets the whole answer")
}

// A replayed sealed pull is never answered twice.
func TestReplayedDatagramIsNotAnsweredTwice(t *testing.T) {
	c := newMemNetwork(t, transport.NetworkConfig{})
	member := c.rawPeer(memAddr(1))
	nd := c.newNode(0, Config{Registry: peersOf(member.ep.Addr()), Keyring: ringFor(t, "a passphrase for replay")})
	require.NoError(t, nd.Start())
	_, err := nd.Publish(context.Background(), "replay", []byte("cached"))
	require.NoError(t, err)

	sealer := security.NewSealer(ringFor(t, "a passphrase for replay"), security.SealerConfig{})
	sealed, err := sealer.Seal(nil, gossip.AppendPullRequest(nil, &gossip.PullRequest{}), c.net.Now())
	require.NoError(t, err)
	require.NoError(t, member.ep.Send(nd.Addr(), sealed))
	c.run(300 * time.Millisecond)
	first, _ := member.answers()
	require.NotZero(t, first, "answered once")
	require.NoError(t, member.ep.Send(nd.Addr(), sealed))
	c.run(300 * time.Millisecond)
	second, _ := member.answers()
	require.Zero(t, second, "not answered again")
	require.Equal(t, uint64(1), nd.Stats().Drops["replay"])

	// A plaintext pull to an encrypted node is dropped and counted.
	require.NoError(t, member.ep.Send(nd.Addr(), gossip.AppendPullRequest(nil, &gossip.PullRequest{})))
	c.run(300 * time.Millisecond)
	n, _ := member.answers()
	require.Zero(t, n)
	require.Equal(t, uint64(1), nd.Stats().Drops["plaintext"])
}

// Hostile input against live nodes: 100,000 random and mutated datagrams,
// huge length fields, many source addresses. The nodes keep serving, their
// memory stays bounded, and every message published before and during the
// attack is delivered.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t, 3, nil)
	boxes := c.inboxes()
	publish := func(i int) {
		_, err := c.nodes[i%3].Publish(context.Background(), "hostile.test", []byte(fmt.Sprintf("m%d", i)))
		require.NoError(t, err)
	}
	for i := 0; i < 50; i++ {
		publish(i)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// Valid datagrams to mutate.
	var origin gossip.NodeID
	origin[0] = 9
	seeds := [][]byte{
		gossip.AppendPullRequest(nil, &gossip.PullRequest{Origins: []gossip.OriginRanges{{Origin: 7, Ranges: []gossip.SeqRange{{First: 1, End: 5}}}}}),
		append(wire.AppendHeader(nil, wire.Messages), origin[:]...),
		// Huge length fields: a count of 2^63 origins, a payload of 2^62 bytes.
		{'H', 'S', 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		append(append(append(wire.AppendHeader(nil, wire.Messages), origin[:]...), 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 1, 'a'), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f),
	}
	var attackers []*rawPeer
	for i := 0; i < 8; i++ {
		attackers = append(attackers, c.rawPeer(memAddr(100+i)))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const total = 100_000
	buf := make([]byte, 1500)
	for i := 0; i < total; i++ {
		var dg []byte
		switch i % 3 {
		case 0: // random bytes, sometimes with a valid header
			dg = buf[:1+rng.IntN(1400)]
			for j := 0; j < len(dg); j += 8 {
				binary.LittleEndian.PutUint64(buf[j:], rng.Uint64()) // buf has room past dg
			}
			if rng.IntN(2) == 0 && len(dg) >= 4 {
				copy(dg, []byte{'H', 'S', 1, byte(1 + rng.IntN(2))})
			}
		default: // a valid datagram with a few bytes changed, cut or extended
			seed := seeds[rng.IntN(len(seeds))]
			dg = append(buf[:0], seed...)
			for k := 0; k < 1+rng.IntN(4); k++ {
				dg[4+rng.IntN(len(dg)-4)] = byte(rng.Uint32())
			}
			if rng.IntN(3) == 0 {
				dg = dg[:4+rng.IntN(len(dg)-3)]
			}
		}
		if err := attackers[i%len(attackers)].ep.Send(c.nodes[i%3].Addr(), dg); err != nil {
			t.Fatal(err) // not require: its t.Helper costs more than the send
		}
		if i%10_000 == 0 {
			publish(50 + i/10_000) // published during the attack
		}
		if i%500 == 0 {
			c.run(time.Millisecond) // the attack is spread over time, gossip goes on
		}
	}
	const messages = 60
	for i, b := range boxes {
		c.waitFor(time.Minute, func() bool { return b.distinct() >= messages }, "node %d", i)
		require.Equal(t, messages, b.distinct())
	}
	var dropped uint64
	for _, nd := range c.nodes {
		for _, v := range nd.Stats().Gossip.Dropped {
			dropped += v
		}
	}
	t.Logf("datagrams counted as dropped by the cores: %d", dropped)
	require.Greater(t, dropped, uint64(total/2), "the garbage was seen and counted")
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap growth over the attack: %d KiB", growth/1024)
	require.Less(t, growth, int64(64<<20), "memory stays bounded")
	// And the nodes still serve.
	_, err := c.nodes[0].Publish(context.Background(), "after", nil)
	require.NoError(t, err)
}

// The API's security runs on real sockets: it needs a node whose methods
// HTTP handlers may call from their own goroutines.

func TestAPIToken(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	srv := apiServer(t, nd, APIConfig{Token: "s3cret-token"})
	get := func(path, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, get("/v1/status", ""))
	require.Equal(t, http.StatusUnauthorized, get("/v1/status", "Bearer wrong"))
	require.Equal(t, http.StatusUnauthorized, get("/v1/status", "s3cret-token"))
	require.Equal(t, http.StatusUnauthorized, get("/metrics", ""))
	require.Equal(t, http.StatusOK, get("/v1/status", "Bearer s3cret-token"))
	require.Equal(t, http.StatusOK, get("/healthz", ""), "health checks need no token")
}

func TestAPIUnixSocket(t *testing.T) {
	nd := startCluster(t, 1, nil)[0]
	dir, err := os.MkdirTemp("", "hs") // short: socket paths are limited to ~100 bytes
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "api.sock")
	ln, err := ListenAPI("unix:" + path)
	require.NoError(t, err)
	srv := NewAPIServer(NewAPI(nd, APIConfig{}), APIServerConfig{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	resp, err := client.Get("http://hearsay/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = ListenAPI("unix:" + path)
	require.ErrorContains(t, err, "in use")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o600))
	_, err = ListenAPI("unix:" + filepath.Join(dir, "file"))
	require.ErrorContains(t, err, "not a socket")
}

// A client that trickles its headers or its body is cut off.
func TestAPISlowloris(t *testing.T) {
	t.Parallel()
	nd := startCluster(t, 1, nil)[0]
	ln, err := ListenAPI("127.0.0.1:0")
	require.NoError(t, err)
	srv := NewAPIServer(NewAPI(nd, APIConfig{BodyTimeout: 300 * time.Millisecond}), APIServerConfig{ReadHeaderTimeout: 300 * time.Millisecond})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	closedWithin := func(send func(c net.Conn)) bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		send(c)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, bufio.NewReader(c))
		return err == nil // EOF: the server closed the connection
	}
	require.True(t, closedWithin(func(c net.Conn) {
		io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: x\r\n") // and never the blank line
	}), "slow headers")
	require.True(t, closedWithin(func(c net.Conn) {
		io.WriteString(c, "POST /v1/messages?topic=a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	}), "slow body")
}
