package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/security"
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

func waitDistinct(t *testing.T, c *collector, n int, what string) {
	t.Helper()
	require.Eventually(t, func() bool { return c.distinct() >= n }, 60*time.Second, 10*time.Millisecond,
		"%s: %d of %d", what, c.distinct(), n)
}

// Two clusters on the same port range, every node listing every other, with
// different passphrases: nothing crosses, and the drops are counted.
func TestTwoClustersWithDifferentKeysExchangeNothing(t *testing.T) {
	cluster := startCluster(t, 6, func(i int, c *Config) {
		if i < 3 {
			c.Keyring = ringFor(t, "passphrase of cluster A")
		} else {
			c.Keyring = ringFor(t, "passphrase of cluster B")
		}
	})
	var cols []*collector
	for _, nd := range cluster {
		s, err := nd.Subscribe(">")
		require.NoError(t, err)
		cols = append(cols, collect(t, s))
		require.True(t, nd.Encrypted())
	}
	_, err := cluster[0].Publish(context.Background(), "a", []byte("for A"))
	require.NoError(t, err)
	_, err = cluster[3].Publish(context.Background(), "b", []byte("for B"))
	require.NoError(t, err)
	for i, c := range cols {
		waitDistinct(t, c, 1, fmt.Sprintf("node %d", i))
	}
	time.Sleep(40 * fastGossip.Interval)
	for i, c := range cols {
		require.Equal(t, 1, c.distinct(), "node %d got only its own cluster's message", i)
		want := "a"
		if i >= 3 {
			want = "b"
		}
		c.mu.Lock()
		require.Equal(t, want, c.all[0].Topic)
		c.mu.Unlock()
		require.NotZero(t, cluster[i].Stats().Drops["unknown_key"], "node %d counts the other cluster's datagrams", i)
	}
}

// A key rotation across five running nodes loses no message published
// during it.
func TestKeyRotationLosesNothing(t *testing.T) {
	const oldPass, newPass = "the old cluster passphrase", "the new cluster passphrase"
	cluster := startCluster(t, 5, func(i int, c *Config) {
		c.Keyring = ringFor(t, oldPass)
		c.KDF = fastKDF
	})
	var cols []*collector
	for _, nd := range cluster {
		s, err := nd.Subscribe(">")
		require.NoError(t, err)
		cols = append(cols, collect(t, s))
	}
	var published atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			if _, err := cluster[i%5].Publish(context.Background(), "rotation", []byte{byte(i)}); err == nil {
				published.Add(1)
			}
		}
	}()
	step := func() { time.Sleep(5 * fastGossip.Interval) }
	step()
	var newID security.KeyID
	for _, nd := range cluster { // 1. install everywhere
		id, err := nd.InstallPassphrase([]byte(newPass))
		require.NoError(t, err)
		newID = id
		step()
	}
	for _, nd := range cluster { // 2. use everywhere
		require.NoError(t, nd.UseKey(newID))
		step()
	}
	oldID := ringFor(t, oldPass).List()[0].ID
	for _, nd := range cluster { // 3. remove the old key
		id, _ := security.ParseKeyID(oldID)
		require.NoError(t, nd.RemoveKey(id))
		step()
	}
	close(stop)
	wg.Wait()
	n := int(published.Load())
	require.Greater(t, n, 100)
	for i, c := range cols {
		waitDistinct(t, c, n, fmt.Sprintf("node %d", i))
		for id, k := range c.counts() {
			require.Equal(t, 1, k, "node %d delivered %v twice", i, id)
		}
	}
	for _, nd := range cluster {
		require.Equal(t, []security.KeyInfo{{ID: newID.String(), Primary: true}}, nd.Keys())
	}
}

// rawPeer is a bare UDP socket on 127.0.0.X, for sending crafted datagrams.
func rawPeer(t *testing.T, host string) *net.UDPConn {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(host+":0")))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// readAnswers reads the MESSAGES datagrams (sealed or not) that arrive
// until none has come for quiet, ignoring the node's own pulls.
func readAnswers(c *net.UDPConn, quiet time.Duration) (datagrams, bytes int) {
	buf := make([]byte, 65536)
	last := time.Now()
	for time.Since(last) < quiet {
		c.SetReadDeadline(time.Now().Add(quiet / 4))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || n < 4 || buf[3]&0x7f != byte(wire.Messages) {
			continue
		}
		last = time.Now()
		datagrams++
		bytes += n
	}
	return
}

// A stranger's pulls are answered with at most three times the bytes it
// sent; a member's are answered in full.
func TestAmplificationLimit(t *testing.T) {
	member := rawPeer(t, "127.0.0.1")
	memberAddr := member.LocalAddr().(*net.UDPAddr).AddrPort()
	reg := &settablePeers{}
	reg.set([]netip.AddrPort{memberAddr})
	nd, err := New(Config{Bind: "127.0.0.1:0", Registry: reg, Gossip: fastGossip})
	require.NoError(t, err)
	t.Cleanup(func() { nd.Close() })
	require.NoError(t, nd.Start())
	// 60 answers of ~1 KB: enough to show the difference, few enough to fit
	// the raw test socket's default receive buffer.
	for i := 0; i < 60; i++ {
		_, err := nd.Publish(context.Background(), "amp", []byte(strings.Repeat("x", 1000)))
		require.NoError(t, err)
	}
	pull := gossip.AppendPullRequest(nil, &gossip.PullRequest{}) // "I hold nothing"
	to := net.UDPAddrFromAddrPort(nd.Addr())

	// The stranger's pulls carry a digest of 60 origins it claims to hold
	// (none of them ours): ~1.2 KB each, so a 3x allowance lets answers through.
	big := &gossip.PullRequest{}
	for i := 0; i < 60; i++ {
		big.Origins = append(big.Origins, gossip.OriginRanges{Origin: gossip.OriginTag(i + 1), Ranges: []gossip.SeqRange{{First: 1, End: 1 << 40}}})
	}
	strangerPull := gossip.AppendPullRequest(nil, big)
	stranger := rawPeer(t, "127.0.0.3")
	sent := 0
	for i := 0; i < 20; i++ {
		n, err := stranger.WriteToUDP(strangerPull, to)
		require.NoError(t, err)
		sent += n
	}
	_, got := readAnswers(stranger, 300*time.Millisecond)
	t.Logf("stranger: sent %d bytes, answered %d bytes: factor %.2f", sent, got, float64(got)/float64(sent))
	require.LessOrEqual(t, got, 3*sent, "a stranger gets at most 3x what it sent")
	require.Greater(t, got, sent, "but it is answered within that")
	require.NotZero(t, nd.Stats().Drops["amplification"])

	_, err = member.WriteToUDP(pull, to)
	require.NoError(t, err)
	_, gotMember := readAnswers(member, 300*time.Millisecond)
	t.Logf("member: sent %d bytes, answered %d bytes: factor %.0f", len(pull), gotMember, float64(gotMember)/float64(len(pull)))
	require.Greater(t, gotMember, 50*1000, "a member gets the whole answer")
}

// A replayed sealed pull is never answered twice.
func TestReplayedDatagramIsNotAnsweredTwice(t *testing.T) {
	member := rawPeer(t, "127.0.0.1")
	reg := &settablePeers{}
	reg.set([]netip.AddrPort{member.LocalAddr().(*net.UDPAddr).AddrPort()})
	ring := ringFor(t, "a passphrase for replay")
	nd, err := New(Config{Bind: "127.0.0.1:0", Registry: reg, Gossip: fastGossip, Keyring: ring})
	require.NoError(t, err)
	t.Cleanup(func() { nd.Close() })
	require.NoError(t, nd.Start())
	_, err = nd.Publish(context.Background(), "replay", []byte("cached"))
	require.NoError(t, err)

	sealer := security.NewSealer(ringFor(t, "a passphrase for replay"), security.SealerConfig{})
	sealed, err := sealer.Seal(nil, gossip.AppendPullRequest(nil, &gossip.PullRequest{}), time.Now())
	require.NoError(t, err)
	to := net.UDPAddrFromAddrPort(nd.Addr())
	_, err = member.WriteToUDP(sealed, to)
	require.NoError(t, err)
	first, _ := readAnswers(member, 300*time.Millisecond)
	require.NotZero(t, first, "answered once")
	_, err = member.WriteToUDP(sealed, to)
	require.NoError(t, err)
	second, _ := readAnswers(member, 300*time.Millisecond)
	require.Zero(t, second, "not answered again")
	require.Equal(t, uint64(1), nd.Stats().Drops["replay"])

	// A plaintext pull to an encrypted node is dropped and counted.
	_, err = member.WriteToUDP(gossip.AppendPullRequest(nil, &gossip.PullRequest{}), to)
	require.NoError(t, err)
	n, _ := readAnswers(member, 200*time.Millisecond)
	require.Zero(t, n)
	require.Equal(t, uint64(1), nd.Stats().Drops["plaintext"])
}

// Hostile input against live nodes: 100,000 random and mutated datagrams,
// huge length fields, many source addresses. The nodes keep serving, their
// memory stays bounded, and every message published before and during the
// attack is delivered.
func TestHostileInput(t *testing.T) {
	cluster := startCluster(t, 3, nil)
	var cols []*collector
	for _, nd := range cluster {
		s, err := nd.Subscribe(">")
		require.NoError(t, err)
		cols = append(cols, collect(t, s))
	}
	publish := func(i int) {
		_, err := cluster[i%3].Publish(context.Background(), "hostile.test", []byte(fmt.Sprintf("m%d", i)))
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
	var attackers []*net.UDPConn
	for i := 2; i <= 9; i++ {
		attackers = append(attackers, rawPeer(t, fmt.Sprintf("127.0.0.%d", i)))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const total = 100_000
	buf := make([]byte, 1500)
	for i := 0; i < total; i++ {
		var dg []byte
		switch i % 3 {
		case 0: // random bytes, sometimes with a valid header
			dg = buf[:1+rng.IntN(1400)]
			for j := range dg {
				dg[j] = byte(rng.Uint32())
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
		target := net.UDPAddrFromAddrPort(cluster[i%3].Addr())
		_, _ = attackers[i%len(attackers)].WriteToUDP(dg, target)
		if i%10_000 == 0 {
			publish(50 + i/10_000) // published during the attack
		}
		if i%500 == 0 {
			time.Sleep(time.Millisecond) // let the nodes keep up; loss is not the point
		}
	}
	const messages = 60
	for i, c := range cols {
		waitDistinct(t, c, messages, fmt.Sprintf("node %d", i))
		require.Equal(t, messages, c.distinct())
	}
	var dropped uint64
	for _, nd := range cluster {
		st := nd.Stats()
		for _, v := range st.Gossip.Dropped {
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
	_, err := cluster[0].Publish(context.Background(), "after", nil)
	require.NoError(t, err)
}

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
