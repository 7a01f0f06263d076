package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dockerTestsEnv gates the tests on the Docker engine: they take a minute
// or more each, too long for the default suite. .ci/run sets it.
const dockerTestsEnv = "HEARSAY_DOCKER_TESTS"

// run runs a command for at most timeout and returns its standard output;
// a failure fails the test with both streams.
func run(t *testing.T, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	out, err := tryRun(timeout, env, name, args...)
	require.NoError(t, err, "%s %s", name, strings.Join(args, " "))
	return out
}

// tryRun runs a command for at most timeout and returns its standard
// output, or an error carrying its standard error.
func tryRun(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// requireDockerEngine skips the test unless the variable is set and a
// Docker engine answers.
func requireDockerEngine(t *testing.T) {
	t.Helper()
	if os.Getenv(dockerTestsEnv) == "" {
		t.Skipf("set %s=1 to run the tests on the Docker engine (.ci/run does)", dockerTestsEnv)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker command: install Docker to run this test")
	}
	if out, err := tryRun(30*time.Second, nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		t.Skipf("no Docker engine answers (docker version: %v %s)", err, out)
	}
}

// requireDocker skips the test unless requireDockerEngine lets it run and
// a compose tool is installed; it returns the compose command: the docker
// compose plugin if there is one, else docker-compose.
func requireDocker(t *testing.T) []string {
	t.Helper()
	requireDockerEngine(t)
	if _, err := tryRun(30*time.Second, nil, "docker", "compose", "version"); err == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Skip("neither docker compose nor docker-compose is installed")
	return nil
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// buildImage builds the image from the repository's Dockerfile and
// .dockerignore as documented, in a context holding what the repository's
// would (dist/hearsay, deploy/image/data/), under a tag of its own that
// the test removes at the end. It returns the tag.
func buildImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"Dockerfile", ".dockerignore", "deploy/image/data/.gitkeep", "dist/hearsay"} {
		src := filepath.Join(root, f)
		if f == "dist/hearsay" {
			src = hearsayBinary(t)
		}
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o755))
	}
	tag := "hearsay-test:" + randomHex(t, 6)
	t.Cleanup(func() {
		if out, err := tryRun(time.Minute, nil, "docker", "rmi", "-f", tag); err != nil {
			t.Logf("docker rmi %s: %v %s", tag, err, out)
		}
	})
	run(t, 5*time.Minute, nil, "docker", "build", "-q", "-t", tag, dir)
	size := strings.TrimSpace(run(t, time.Minute, nil, "docker", "image", "inspect", "--format", "{{.Size}}", tag))
	t.Logf("image %s: %s bytes", tag, size)
	imageBytes, err := strconv.ParseInt(size, 10, 64)
	require.NoError(t, err, "docker image inspect printed %q", size)
	require.LessOrEqual(t, imageBytes, int64(maxImageBytes),
		"the image outgrew docs/deploy.md's bound: look at what the binary now links (go version -m dist/hearsay)")
	return tag
}

// maxImageBytes is the most the image may weigh (docs/deploy.md, "Size"):
// it is FROM scratch, so this bounds the binary.
const maxImageBytes = 25_000_000

// composeCluster is deploy/compose.yaml brought up under a project name of
// its own.
type composeCluster struct {
	t       *testing.T
	compose []string // the command and its project and file flags
	env     []string
	token   string
	ids     map[string]string // container IDs by service, once up
}

func (c *composeCluster) run(timeout time.Duration, args ...string) string {
	c.t.Helper()
	return run(c.t, timeout, c.env, c.compose[0], append(c.compose[1:], args...)...)
}

// container returns the ID of a service's container.
func (c *composeCluster) container(service string) string {
	c.t.Helper()
	id := strings.TrimSpace(c.run(time.Minute, "ps", "-q", service))
	require.NotEmpty(c.t, id, "no container for %s", service)
	return id
}

// status is the part of GET /v1/status the test reads.
type status struct {
	Name          string `json:"name"`
	Peers         int    `json:"peers"`
	CacheMessages int    `json:"cache_messages"`
	MerkleRoot    string `json:"merkle_root"`
	LogMessages   int    `json:"log_messages"`
}

// status asks a service's agent through its published API port, looked up
// each time (a restarted container may get another host port).
func (c *composeCluster) status(service string) (status, error) {
	var s status
	out, err := tryRun(time.Minute, nil, "docker", "port", c.ids[service], "7601/tcp")
	if err != nil {
		return s, err
	}
	addr, _, _ := strings.Cut(strings.TrimSpace(out), "\n") // the IPv4 line comes first
	if addr == "" || strings.HasSuffix(addr, ":0") {
		return s, fmt.Errorf("%s's API is not published (yet)", service)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/status", nil)
	if err != nil {
		return s, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("%s: %d %s", service, resp.StatusCode, body)
	}
	return s, json.Unmarshal(body, &s)
}

var services = []string{"node1", "node2", "node3"}

// lastSeen is what a condition last saw, for the message of a wait that
// timed out; Eventually checks from another goroutine.
type lastSeen struct {
	mu sync.Mutex
	s  string
}

func (l *lastSeen) set(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s = s
}

func (l *lastSeen) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s
}

// waitAgree waits until the services answer with two peers each and the
// same Merkle root over at least logged messages, and returns how long
// that took. Where the propagation cache no longer holds what a node
// lacks, that is Merkle anti-entropy's work.
func (c *composeCluster) waitAgree(what string, logged int, among ...string) time.Duration {
	c.t.Helper()
	start := time.Now()
	last := &lastSeen{}
	require.Eventually(c.t, func() bool {
		var seen []string
		defer func() { last.set(strings.Join(seen, "; ")) }()
		root := ""
		agree := true
		for _, svc := range among {
			s, err := c.status(svc)
			if err != nil {
				seen = append(seen, err.Error())
				return false
			}
			seen = append(seen, fmt.Sprintf("%s: %d peers, %d messages, root %.8s", svc, s.Peers, s.LogMessages, s.MerkleRoot))
			if root == "" {
				root = s.MerkleRoot
			}
			agree = agree && s.Peers == len(services)-1 && s.LogMessages >= logged && s.MerkleRoot == root
		}
		return agree
	}, 2*time.Minute, 200*time.Millisecond, "%s: %s", what, last)
	took := time.Since(start)
	c.t.Logf("%s: %v", what, took.Round(10*time.Millisecond))
	return took
}

// push publishes a message with hearsay push inside a service's
// container, as docs/deploy.md shows it.
func (c *composeCluster) push(service, data string) {
	c.t.Helper()
	id := strings.TrimSpace(c.run(time.Minute, "exec", "-T", service, "/hearsay", "push", "--topic", "deploy.test", data))
	require.Len(c.t, id, 32, "hearsay push prints the message's ID, got %q", id)
}

// The compose cluster on the real engine: it converges, a killed node
// catches up once started again, a node cut off the network catches up
// once reconnected, and a rolling restart loses nothing.
func TestComposeCluster(t *testing.T) {
	compose := requireDocker(t)
	image := buildImage(t)

	dir := t.TempDir()
	passphrase := filepath.Join(dir, "passphrase")
	pass, err := runHearsay(t, "keygen")
	require.NoError(t, err)
	// Readable by the containers' user: compose without swarm bind-mounts
	// secret files as they are. The directory keeps it from the host's
	// other users.
	require.NoError(t, os.WriteFile(passphrase, []byte(pass), 0o644))
	require.NoError(t, os.Chmod(dir, 0o700))

	project := "hearsaytest" + randomHex(t, 4)
	c := &composeCluster{t: t, token: randomHex(t, 16),
		compose: append(compose, "-p", project, "-f", "compose.yaml")}
	c.env = []string{"HEARSAY_IMAGE=" + image, "HEARSAY_PASSPHRASE_FILE=" + passphrase, "HEARSAY_API_TOKEN=" + c.token,
		// Free host ports: the defaults (7601, 7611, 7621) may be taken.
		"HEARSAY_NODE1_API=127.0.0.1:", "HEARSAY_NODE2_API=127.0.0.1:", "HEARSAY_NODE3_API=127.0.0.1:"}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := tryRun(time.Minute, c.env, c.compose[0], append(c.compose[1:], "logs", "--no-color", "--tail", "40")...)
			t.Logf("the cluster's last logs:\n%s", out)
		}
		if out, err := tryRun(2*time.Minute, c.env, c.compose[0], append(c.compose[1:], "down", "-v", "--timeout", "5")...); err != nil {
			t.Logf("compose down: %v %s", err, out)
		}
	})

	up := time.Now()
	c.run(3*time.Minute, "up", "-d")
	c.ids = map[string]string{}
	for _, svc := range services {
		c.ids[svc] = c.container(svc)
	}
	c.waitAgree("converged", 0, services...)
	t.Logf("from compose up to a converged cluster (every node with 2 peers): %v", time.Since(up).Round(10*time.Millisecond))
	for _, svc := range services {
		c.waitReady(svc)
	}
	t.Logf("from compose up to every node ready (/readyz: peers and a first anti-entropy pass): %v", time.Since(up).Round(10*time.Millisecond))
	status := c.run(time.Minute, "exec", "-T", "node1", "/hearsay", "status")
	require.Contains(t, status, `"encrypted": true`, "hearsay status in the container")
	c.push("node1", "hello from node1")
	c.waitAgree("first message everywhere", 1, services...)

	// A killed node, started again, gets what was published while it was
	// down.
	node3 := c.ids["node3"]
	run(t, time.Minute, nil, "docker", "kill", node3)
	for i := range 5 {
		c.push("node1", fmt.Sprintf("while node3 was killed %d", i))
	}
	c.waitGossipDone("node1")
	run(t, time.Minute, nil, "docker", "start", node3)
	c.waitAgree("catch-up after docker kill and start", 6, services...)

	// A node disconnected from the network misses what is published
	// meanwhile, and catches up once connected again.
	node2 := c.ids["node2"]
	var networks map[string]any
	require.NoError(t, json.Unmarshal([]byte(run(t, time.Minute, nil, "docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", node2)), &networks))
	require.Len(t, networks, 1)
	var network string
	for name := range networks {
		network = name
	}
	require.True(t, strings.HasPrefix(network, project), "the network %s is the test's project's", network)
	run(t, time.Minute, nil, "docker", "network", "disconnect", network, node2)
	for i := range 5 {
		c.push("node1", fmt.Sprintf("while node2 was cut off %d", i))
	}
	c.waitAgreeOnRoot("node1 and node3 during the partition", 11, "node1", "node3")
	behind := c.run(time.Minute, "exec", "-T", "node2", "/hearsay", "status")
	require.Contains(t, behind, `"log_messages": 6,`, "node2 got nothing while cut off")
	c.waitGossipDone("node1")
	run(t, time.Minute, nil, "docker", "network", "connect", network, node2)
	c.waitAgree("catch-up after the partition", 11, services...)

	// The image's HEALTHCHECK (hearsay health) finds every node healthy.
	for _, svc := range services {
		require.Eventually(t, func() bool {
			out, err := tryRun(time.Minute, nil, "docker", "inspect", "--format", "{{.State.Health.Status}}", c.ids[svc])
			return err == nil && strings.TrimSpace(out) == "healthy"
		}, time.Minute, 500*time.Millisecond, "docker reports %s healthy", svc)
	}

	// A rolling restart: one node at a time, each back and caught up
	// before the next goes, a message published on another node as soon
	// as each is back.
	for i, svc := range services {
		c.run(time.Minute, "restart", "--timeout", "10", svc)
		c.push(services[(i+1)%len(services)], "during the restart of "+svc)
		c.waitAgree("rolling restart: "+svc+" back", 12+i, services...)
	}
}

// waitReady waits until a service's agent says it is ready, as the
// Kubernetes readiness probe asks it.
func (c *composeCluster) waitReady(service string) {
	c.t.Helper()
	last := &lastSeen{}
	require.Eventually(c.t, func() bool {
		out, err := tryRun(time.Minute, nil, "docker", "exec", c.ids[service], "/hearsay", "health", "--ready")
		last.set(fmt.Sprint(strings.TrimSpace(out), " ", err))
		return err == nil
	}, 2*time.Minute, 200*time.Millisecond, "%s ready: %s", service, last)
}

// waitGossipDone waits until a service's propagation cache is empty: what
// a node lacks from then on only anti-entropy brings it.
func (c *composeCluster) waitGossipDone(service string) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		s, err := c.status(service)
		return err == nil && s.CacheMessages == 0
	}, 2*time.Minute, 200*time.Millisecond, "%s's propagation cache empties", service)
}

// waitAgreeOnRoot waits until some services hold the same Merkle root over
// at least logged messages, whatever their peers.
func (c *composeCluster) waitAgreeOnRoot(what string, logged int, among ...string) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		root := ""
		for _, svc := range among {
			s, err := c.status(svc)
			if err != nil || s.LogMessages < logged || root != "" && s.MerkleRoot != root {
				return false
			}
			root = s.MerkleRoot
		}
		return true
	}, 2*time.Minute, 200*time.Millisecond, what)
}
