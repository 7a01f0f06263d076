package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dockerfile returns the Dockerfile's instructions by keyword, each the
// rest of its line (continuations joined).
func dockerfile(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	defer f.Close()
	out := map[string][]string{}
	var line string
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		text := strings.TrimSpace(lines.Text())
		if line == "" && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			line += cont + " "
			continue
		}
		line += text
		keyword, rest, _ := strings.Cut(line, " ")
		out[strings.ToUpper(keyword)] = append(out[strings.ToUpper(keyword)], strings.TrimSpace(rest))
		line = ""
	}
	require.NoError(t, lines.Err())
	return out
}

// imageUser returns the Dockerfile's numeric USER uid.
func imageUser(t *testing.T) int {
	t.Helper()
	users := dockerfile(t)["USER"]
	require.Len(t, users, 1, "the Dockerfile has one USER")
	uid, _, _ := strings.Cut(users[0], ":")
	n, err := strconv.Atoi(uid)
	require.NoError(t, err, "USER %s: scratch has no /etc/passwd, the user must be numeric", users[0])
	return n
}

// jsonArgs parses an exec-form instruction: ["a", "b"].
func jsonArgs(t *testing.T, keyword, rest string) []string {
	t.Helper()
	var args []string
	require.NoError(t, json.Unmarshal([]byte(rest), &args), "%s %s: want the exec form", keyword, rest)
	return args
}

// The Dockerfile is what docs/deploy.md says: FROM scratch, the binary as
// entrypoint, an agent command whose flags exist and whose ports are the
// exposed ones, state in the volume, a non-root user, a health check.
func TestDockerfile(t *testing.T) {
	d := dockerfile(t)
	assert.Equal(t, []string{"scratch"}, d["FROM"])
	assert.Equal(t, []string{"/hearsay"}, jsonArgs(t, "ENTRYPOINT", d["ENTRYPOINT"][0]))
	assert.NotZero(t, imageUser(t), "USER must not be root")

	require.Len(t, d["CMD"], 1)
	cmd := jsonArgs(t, "CMD", d["CMD"][0])
	require.Equal(t, "agent", cmd[0])
	flags := parseFlags(t, "Dockerfile CMD", cmd[1:])
	requireAgentAccepts(t, "Dockerfile CMD", cmd[1:])
	assert.Equal(t, "0.0.0.0", strings.Split(flags["bind"], ":")[0], "gossip on every interface")
	assert.Equal(t, "0.0.0.0", strings.Split(flags["api"], ":")[0], "the API reachable through published ports")
	assert.ElementsMatch(t,
		[]string{portOf(t, "--bind", flags["bind"]) + "/udp", portOf(t, "--api", flags["api"]) + "/tcp"},
		strings.Fields(strings.Join(d["EXPOSE"], " ")), "EXPOSE is the command's ports")
	require.Len(t, d["VOLUME"], 1)
	assert.Equal(t, []string{flags["data-dir"]}, jsonArgs(t, "VOLUME", d["VOLUME"][0]), "the volume is --data-dir")

	require.Len(t, d["HEALTHCHECK"], 1)
	_, check, ok := strings.Cut(d["HEALTHCHECK"][0], "CMD ")
	require.True(t, ok, "HEALTHCHECK %s", d["HEALTHCHECK"][0])
	assert.Equal(t, []string{"/hearsay", "health"}, jsonArgs(t, "HEALTHCHECK CMD", check))

	// The volume's directory is copied in, owned by the user: scratch has
	// no mkdir, and a named volume takes the ownership of what it covers.
	uid := strconv.Itoa(imageUser(t))
	owned := false
	for _, c := range d["COPY"] {
		owned = owned || strings.HasPrefix(c, "--chown="+uid+":") && strings.HasSuffix(strings.TrimSuffix(c, "/"), " "+flags["data-dir"])
	}
	assert.True(t, owned, "COPY --chown=%s:... DIR %s", uid, flags["data-dir"])

	// .dockerignore leaves out everything but what the COPYs take, so
	// that the build context is the binary and little else.
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	var patterns []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	require.NotEmpty(t, patterns)
	assert.Equal(t, "*", patterns[0], ".dockerignore starts by leaving out everything")
	for _, c := range d["COPY"] {
		fields := strings.Fields(c)
		src := strings.TrimSuffix(fields[len(fields)-2], "/")
		assert.Contains(t, patterns, "!"+src, ".dockerignore lets in %s, which the Dockerfile copies", src)
	}
}
