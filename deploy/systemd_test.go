package deploy

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const unitBinary = "/usr/local/bin/hearsay"

// unitDirectives returns the directives of deploy/systemd/hearsay.service,
// by section and key, in order.
func unitDirectives(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("systemd", "hearsay.service"))
	require.NoError(t, err)
	defer f.Close()
	out := map[string][]string{}
	section := ""
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			key, value, ok := strings.Cut(line, "=")
			require.True(t, ok, "hearsay.service: %q", line)
			out[section+"."+key] = append(out[section+"."+key], value)
		}
	}
	require.NoError(t, lines.Err())
	return out
}

// The unit runs the agent with its config file, hardened, as a dedicated
// user with its state directory, restarting on failure but not on a
// mistake in the configuration; the config file's keys are agent flags
// that fit the unit.
func TestSystemdUnit(t *testing.T) {
	unit := unitDirectives(t)
	for key, want := range map[string]string{
		"Service.User": "hearsay", "Service.StateDirectory": "hearsay", "Service.NoNewPrivileges": "yes",
		"Service.ProtectSystem": "strict", "Service.Restart": "on-failure", "Service.RestartPreventExitStatus": "2",
	} {
		assert.Equal(t, []string{want}, unit[key], key)
	}
	sysusers, err := os.ReadFile(filepath.Join("systemd", "hearsay.sysusers"))
	require.NoError(t, err)
	assert.Contains(t, string(sysusers), "\nu hearsay ", "hearsay.sysusers creates the unit's user")

	require.Len(t, unit["Service.ExecStart"], 1)
	exec := strings.Fields(unit["Service.ExecStart"][0])
	require.Equal(t, []string{unitBinary, "agent"}, exec[:2])
	flags := parseFlags(t, "ExecStart", exec[2:])
	require.Equal(t, "/etc/hearsay/hearsay.yaml", flags["config"], "the unit reads the example config from /etc/hearsay")

	// The example config: every key a flag, the data dir the unit's state
	// directory, the passphrase the unit's credential.
	b, err := os.ReadFile(filepath.Join("systemd", "hearsay.yaml"))
	require.NoError(t, err)
	var config map[string]any
	require.NoError(t, yaml.Unmarshal(b, &config))
	known := agentFlags(t)
	for key := range config {
		assert.True(t, known[key], "hearsay.yaml: %s is not a flag of hearsay agent", key)
	}
	assert.Equal(t, "/var/lib/"+unit["Service.StateDirectory"][0], config["data-dir"])
	require.Len(t, unit["Service.LoadCredential"], 1)
	credential, _, _ := strings.Cut(unit["Service.LoadCredential"][0], ":")
	assert.Equal(t, "/run/credentials/hearsay.service/"+credential, config["passphrase-file"])

	// The agent accepts the file as it is, but for the passphrase: a
	// credential only systemd provides, replaced by a flag, which wins.
	out := requireAgentAccepts(t, "hearsay.yaml", []string{"--config", filepath.Join("systemd", "hearsay.yaml"),
		"--passphrase-file", "/run/credentials/hearsay.service/passphrase"})
	assert.Contains(t, out, "hearsay.example.internal:7600", "--print-config shows the file's join")
}

// systemd-analyze verify finds nothing wrong with the unit, where it is
// installed. It checks that the executables exist: the unit is verified
// with ExecStart pointing at the binary this test built.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd); TestSystemdUnit still checks the unit")
	}
	b, err := os.ReadFile(filepath.Join("systemd", "hearsay.service"))
	require.NoError(t, err)
	require.Contains(t, string(b), "ExecStart="+unitBinary+" ")
	unit := filepath.Join(t.TempDir(), "hearsay.service")
	require.NoError(t, os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "ExecStart="+unitBinary, "ExecStart="+hearsayBinary(t))), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", unit).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify:\n%s", out)
	assert.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify warns")
}
