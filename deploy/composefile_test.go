package deploy

import (
	"net"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The parts of compose.yaml the test checks.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Secrets     []string          `yaml:"secrets"`
		Environment map[string]string `yaml:"environment"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

// compose.yaml agrees with the binary and with itself, without Docker:
// the command's flags exist, every node joins every node on the gossip
// port, each has its own volume on --data-dir, its API published on the
// host's loopback, the passphrase from the secret.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	require.NoError(t, err)
	var f composeFile
	require.NoError(t, yaml.Unmarshal(b, &f), "compose.yaml")

	var names []string
	for name := range f.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	require.Equal(t, services, names)
	hostPorts := map[string]string{"node1": "7601", "node2": "7611", "node3": "7621"}
	volumes := map[string]bool{}
	for _, name := range names {
		svc := f.Services[name]
		assert.Equal(t, "${HEARSAY_IMAGE:-hearsay:latest}", svc.Image, name)
		require.NotEmpty(t, svc.Command, name)
		require.Equal(t, "agent", svc.Command[0], name)
		flags := parseFlags(t, "compose.yaml "+name, svc.Command[1:])
		requireAgentAccepts(t, "compose.yaml "+name, svc.Command[1:])
		gossipPort := portOf(t, "--bind", flags["bind"])
		apiPort := portOf(t, "--api", flags["api"])
		assert.Equal(t, "dns", flags["registry"], name)

		var joined []string
		for _, entry := range strings.Split(flags["join"], ",") {
			host, port, err := net.SplitHostPort(entry)
			require.NoError(t, err, "%s --join %s", name, entry)
			assert.Equal(t, gossipPort, port, "%s --join %s: the gossip port", name, entry)
			joined = append(joined, host)
		}
		assert.ElementsMatch(t, services, joined, "%s joins every node by its service name", name)

		require.Len(t, svc.Ports, 1, name)
		want := "${HEARSAY_" + strings.ToUpper(name) + "_API:-127.0.0.1:" + hostPorts[name] + "}:" + apiPort
		assert.Equal(t, want, svc.Ports[0], "%s publishes its API on the host's loopback", name)

		require.Len(t, svc.Volumes, 1, name)
		volume, mount, _ := strings.Cut(svc.Volumes[0], ":")
		assert.Equal(t, flags["data-dir"], mount, "%s's volume is its --data-dir", name)
		assert.Contains(t, f.Volumes, volume, "%s's volume is a named volume", name)
		assert.False(t, volumes[volume], "%s shares its volume", name)
		volumes[volume] = true

		require.Len(t, svc.Secrets, 1, name)
		assert.Equal(t, "/run/secrets/"+svc.Secrets[0], flags["passphrase-file"], "%s reads the passphrase from its secret", name)
		assert.Contains(t, f.Secrets, path.Base(flags["passphrase-file"]))
		assert.Contains(t, svc.Environment, "HEARSAY_API_TOKEN", "%s carries the API token for the commands run in it", name)
	}
}
