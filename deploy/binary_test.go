package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// root is the repository, seen from deploy/.
const root = ".."

var (
	buildOnce sync.Once
	buildDir  string // holds dist/hearsay; removed by TestMain
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// hearsayBinary returns the path of the static binary the image ships,
// built once per run as the documented command builds it (CGO_ENABLED=0),
// at dist/hearsay under a temporary directory.
func hearsayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "hearsay-deploy-"); buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(buildDir, "dist", "hearsay"), "./cmd/hearsay")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("CGO_ENABLED=0 go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return filepath.Join(buildDir, "dist", "hearsay")
}

var helpFlagRE = regexp.MustCompile(`(?m)^\s+--([a-z][a-z0-9-]*)`)

// agentFlags returns the long flags `hearsay agent --help` lists.
func agentFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(hearsayBinary(t), "agent", "--help").Output()
	require.NoError(t, err)
	flags := map[string]bool{}
	for _, m := range helpFlagRE.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	require.Contains(t, flags, "bind", "agent --help as this test reads it")
	return flags
}

// parseFlags splits an agent command line ("--bind=0.0.0.0:7600" or
// "--bind", "0.0.0.0:7600") into flag values, failing on a flag the agent
// does not have. A flag given without a value maps to "".
func parseFlags(t *testing.T, where string, args []string) map[string]string {
	t.Helper()
	known := agentFlags(t)
	flags := map[string]string{}
	for i := 0; i < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		require.True(t, ok, "%s: %q is not a flag", where, args[i])
		name, value, hasValue := strings.Cut(name, "=")
		require.True(t, known[name], "%s: --%s is not a flag of hearsay agent", where, name)
		if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			value = args[i+1]
			i++
		}
		flags[name] = value
	}
	return flags
}

// portOf returns the port of a flag's host:port value.
func portOf(t *testing.T, where, hostport string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(hostport)
	require.NoError(t, err, "%s: %q", where, hostport)
	return port
}

// freePort returns a port of 127.0.0.1 free at the time of the call.
func freePort(t *testing.T, network string) string {
	t.Helper()
	var addr net.Addr
	if network == "udp" {
		conn, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		addr = conn.LocalAddr()
		require.NoError(t, conn.Close())
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr = l.Addr()
		require.NoError(t, l.Close())
	}
	return addr.String()
}

// startAgent runs `hearsay agent` on 127.0.0.1 with no peers and no
// state, and more flags if given, stopped at the end of the test, and
// returns its API's base URL once /healthz answers.
func startAgent(t *testing.T, flags ...string) string {
	t.Helper()
	api := freePort(t, "tcp")
	cmd := exec.Command(hearsayBinary(t), append([]string{"agent", "--bind", freePort(t, "udp"), "--api", api,
		"--data-dir", "", "--filter", "memory"}, flags...)...)
	var logged bytes.Buffer
	cmd.Stderr = &logged
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		<-exited
	})
	client := &http.Client{Timeout: time.Second}
	require.Eventually(t, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		resp, err := client.Get("http://" + api + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "the agent's /healthz answers")
	select {
	case <-exited:
		t.Fatalf("the agent stopped: %s", logged.String())
	default:
	}
	return "http://" + api
}

// httpGet returns the status and body of a GET.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// runHearsay runs the binary and returns what it printed, both streams.
func runHearsay(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, hearsayBinary(t), args...).CombinedOutput()
	return string(out), err
}

// requireAgentAccepts runs `hearsay agent ARGS --print-config`: the agent
// checks every value as it would at start, and prints the configuration
// instead of running. A --passphrase-file (a path that exists only where
// the file is deployed) is replaced by a file of the test's.
func requireAgentAccepts(t *testing.T, where string, args []string) string {
	t.Helper()
	passphrase := filepath.Join(t.TempDir(), "passphrase")
	require.NoError(t, os.WriteFile(passphrase, []byte("a passphrase for the test of "+where+"\n"), 0o600))
	var run []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--passphrase-file="):
			a = "--passphrase-file=" + passphrase
		case a == "--passphrase-file" && i+1 < len(args):
			run = append(run, a)
			a = passphrase
			i++
		}
		run = append(run, a)
	}
	out, err := runHearsay(t, append(append([]string{"agent"}, run...), "--print-config")...)
	require.NoError(t, err, "%s: hearsay agent %s --print-config:\n%s", where, strings.Join(args, " "), out)
	return out
}
