// Package docs_test checks README.md and docs/*.md against the code where
// they can drift and the check is cheap: links and paths, the tests and
// commands they name, every flag table against the built binary's --help,
// the metrics table against a running agent's /metrics, and the figures a
// small run reproduces in a fraction of a second.
package docs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/gossip"
)

const root = ".." // the repository, seen from docs/

// readDocs returns README.md and docs/*.md by their path from the root.
func readDocs(t *testing.T) map[string]string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	docs := map[string]string{}
	for _, name := range append(names, filepath.Join(root, "README.md")) {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		rel, err := filepath.Rel(root, name)
		require.NoError(t, err)
		docs[filepath.ToSlash(rel)] = string(b)
	}
	require.Contains(t, docs, "docs/architecture.md")
	return docs
}

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	require.NoError(t, err)
	return string(b)
}

// flat joins a text's lines, so that a phrase matches across line breaks.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

var (
	linkRE     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE  = regexp.MustCompile(`(?m)^#+ (.+)$`)
	codeSpanRE = regexp.MustCompile("`([^`\n]+)`")
	repoPathRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(/[a-z0-9_]+)*(/|/[a-z0-9_]+\.go)$|^[a-z0-9_]+\.go$`)
	testNameRE = regexp.MustCompile(`\b(?:Test|Benchmark|Fuzz)[A-Z][A-Za-z0-9_]*`)
)

// slug is a heading's anchor as GitHub makes it.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestLinksResolve(t *testing.T) {
	docs := readDocs(t)
	for path, text := range docs {
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			resolved := path
			if file != "" {
				resolved = filepath.ToSlash(filepath.Join(filepath.Dir(path), file))
				_, err := os.Stat(filepath.Join(root, resolved))
				if !assert.NoError(t, err, "%s links to %s", path, target) {
					continue
				}
			}
			if anchor == "" {
				continue
			}
			var slugs []string
			for _, h := range headingRE.FindAllStringSubmatch(readDoc(t, resolved), -1) {
				slugs = append(slugs, slug(h[1]))
			}
			assert.Contains(t, slugs, anchor, "%s links to %s: no such heading", path, target)
		}
	}
}

// notYet lists paths the docs describe that land with the architecture
// issue (14) in other branches. Each must not exist yet: remove it from
// the list once it does, and its mentions are checked like any other.
var notYet []string

// Every repository path a doc names in a code span (`gossip/wire.go`,
// `simulations/`) exists.
func TestCodePathsExist(t *testing.T) {
	for _, p := range notYet {
		_, err := os.Stat(filepath.Join(root, p))
		assert.True(t, os.IsNotExist(err), "%s exists now: remove it from notYet", p)
	}
	for path, text := range readDocs(t) {
		for _, m := range codeSpanRE.FindAllStringSubmatch(text, -1) {
			p := m[1]
			if !repoPathRE.MatchString(p) || strings.HasPrefix(p, "go1") {
				continue
			}
			pending := false
			for _, n := range notYet {
				pending = pending || strings.HasPrefix(p, n)
			}
			if pending {
				continue
			}
			_, err := os.Stat(filepath.Join(root, p))
			assert.NoError(t, err, "%s names %s", path, m[1])
		}
	}
}

var (
	funcRE      = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)\w*)\(`)
	funcsOnce   sync.Once
	funcsByDir  = map[string][]string{} // by package directory from the root
	funcsByName = map[string]bool{}
)

// testFuncs returns the Test, Benchmark and Fuzz functions of the package
// in dir ("./gossip"), or of all packages under it ("./registry/...").
func testFuncs(t *testing.T, dir string) []string {
	t.Helper()
	funcsOnce.Do(func() {
		require.NoError(t, filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
			if err != nil || !strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			for _, m := range funcRE.FindAllSubmatch(b, -1) {
				funcsByDir[filepath.ToSlash(rel)] = append(funcsByDir[filepath.ToSlash(rel)], string(m[1]))
				funcsByName[string(m[1])] = true
			}
			return err
		}))
	})
	prefix, all := strings.CutSuffix(strings.TrimPrefix(dir, "./"), "...")
	prefix = strings.TrimSuffix(prefix, "/")
	var names []string
	for d, fs := range funcsByDir {
		if d == prefix || all && (prefix == "" || strings.HasPrefix(d, prefix+"/")) {
			names = append(names, fs...)
		}
	}
	return names
}

// Every test, benchmark and fuzz target a doc names exists.
func TestNamedTestsExist(t *testing.T) {
	testFuncs(t, "./...")
	for path, text := range readDocs(t) {
		for _, name := range testNameRE.FindAllString(text, -1) {
			assert.True(t, funcsByName[name], "%s names %s, which no test file defines", path, name)
		}
	}
}

var multiLineSpanRE = regexp.MustCompile("`([^`]+)`")

// snippets returns a doc's code: each line of its fenced blocks, and each
// code span elsewhere with its line breaks made spaces.
func snippets(text string) []string {
	var out []string
	for i, part := range strings.Split(text, "```") {
		if i%2 == 1 {
			out = append(out, strings.Split(part, "\n")...)
			continue
		}
		for _, m := range multiLineSpanRE.FindAllStringSubmatch(part, -1) {
			out = append(out, flat(m[1]))
		}
	}
	return out
}

// Every `go test -run X ./pkg` or `-bench X` a doc gives selects at least
// one function of that package, and the package exists.
func TestGoTestCommandsSelectSomething(t *testing.T) {
	for path, text := range readDocs(t) {
		for _, snippet := range snippets(strings.ReplaceAll(text, `\|`, "|")) {
			_, cmd, ok := strings.Cut(snippet, "go test ")
			if !ok {
				continue
			}
			cmd, _, _ = strings.Cut(cmd, "#")
			args := strings.Fields(cmd)
			var pkgs []string
			patterns := map[string]string{}
			for i := 0; i < len(args); i++ {
				switch a := args[i]; {
				case (a == "-run" || a == "-bench") && i+1 < len(args):
					patterns[a] = strings.Trim(args[i+1], `'"`)
					i++
				case strings.HasPrefix(a, "./"):
					pkgs = append(pkgs, a)
				}
			}
			if len(pkgs) == 0 {
				continue // a mention, as in "`go test -fuzz` in gossip/"
			}
			var funcs []string
			for _, p := range pkgs {
				_, err := os.Stat(filepath.Join(root, strings.TrimSuffix(p, "/...")))
				require.NoError(t, err, "%s: go test %s", path, cmd)
				funcs = append(funcs, testFuncs(t, p)...)
			}
			for flag, pattern := range patterns {
				if pattern == "XXX" || pattern == "^$" {
					continue
				}
				top, _, _ := strings.Cut(pattern, "/")
				re, err := regexp.Compile(top)
				require.NoError(t, err, "%s: %s %s", path, flag, pattern)
				prefix := map[string]string{"-run": "Test", "-bench": "Benchmark"}[flag]
				found := false
				for _, f := range funcs {
					found = found || strings.HasPrefix(f, prefix) && re.MatchString(f)
				}
				assert.True(t, found, "%s: go test %s: %s %s selects nothing", path, cmd, flag, pattern)
			}
		}
	}
}

// README's quickstart is the two commands, and CI runs its test command
// exactly as README gives it.
func TestQuickstartIsWhatCIRuns(t *testing.T) {
	readme := readDoc(t, "README.md")
	_, quick, ok := strings.Cut(readme, "## Quickstart")
	require.True(t, ok)
	quick, _, _ = strings.Cut(quick, "\n## ")
	var cmds []string
	for _, line := range strings.Split(quick, "\n") {
		if cmd, _, _ := strings.Cut(line, "#"); strings.HasPrefix(cmd, "go ") {
			cmds = append(cmds, strings.TrimSpace(cmd))
		}
	}
	require.Equal(t, []string{"go run ./cmd/hearsay demo", "go test -race ./..."}, cmds)
	ci := strings.Split(readDoc(t, ".ci/run"), "\n")
	assert.True(t, slices.Contains(ci, cmds[1]), ".ci/run does not run README's test command %q as it is written", cmds[1])
}

const module = "github.com/hearsay-io/hearsay/"

// Every package architecture.md lists imports only what its row allows.
func TestArchitectureImports(t *testing.T) {
	table := section(t, readDoc(t, "docs/architecture.md"), "## Packages")
	rows := 0
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `") || len(cells) != 3 {
			continue
		}
		rows++
		allowed := map[string]bool{}
		for _, m := range codeSpanRE.FindAllStringSubmatch(cells[2], -1) {
			allowed[m[1]] = true
			if strings.Contains(cells[2], "`"+m[1]+"` and its three kinds") {
				allowed[m[1]+"/static"], allowed[m[1]+"/dht"], allowed[m[1]+"/memberlist"] = true, true, true
			}
		}
		below := strings.Contains(cells[2], "and the library below")
		for _, m := range codeSpanRE.FindAllStringSubmatch(cells[0], -1) {
			pkg := m[1]
			files, _ := filepath.Glob(filepath.Join(root, pkg, "*.go"))
			if len(files) == 0 && slices.Contains(notYet, pkg+"/") {
				continue
			}
			require.NotEmpty(t, files, "architecture.md lists %s", pkg)
			for _, f := range files {
				if strings.HasSuffix(f, "_test.go") {
					continue
				}
				parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
				require.NoError(t, err)
				for _, imp := range parsed.Imports {
					dep, ours := strings.CutPrefix(strings.Trim(imp.Path.Value, `"`), module)
					if !ours {
						continue
					}
					assert.True(t, allowed[dep] || below && !strings.HasPrefix(dep, "internal/"),
						"%s imports %s, which its row in architecture.md does not allow", f, dep)
					assert.False(t, strings.HasPrefix(dep, "internal/") && !strings.HasPrefix(pkg, "cmd/"),
						"%s: only cmd/ may import %s", f, dep)
				}
			}
		}
	}
	require.Greater(t, rows, 10, "architecture.md's package table")
}

var (
	buildOnce sync.Once
	binPath   string
	binDir    string // to remove at the end, when the binary is not the cache's
	buildErr  error
)

// hearsay returns the path of the hearsay binary, built once per run.
func hearsay(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() { binPath, buildErr = build() })
	require.NoError(t, buildErr)
	return binPath
}

// build builds cmd/hearsay. Since Go 1.24 the go command caches what go
// run links, so the binary in the cache (go run -exec echo prints its
// path) costs no link once it is there; go build is the fallback.
func build() (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	for range 2 { // the first run fills the cache, and may print a path it then removes
		out, err := exec.Command(goCmd, "run", "-exec", "echo", "../cmd/hearsay").Output()
		if err != nil {
			break
		}
		if path := strings.TrimSpace(string(out)); filepath.IsAbs(path) {
			if _, err := os.Stat(path); err == nil {
				return path, nil
			}
		}
	}
	if binDir, err = os.MkdirTemp("", "hearsay-docs-"); err != nil {
		return "", err
	}
	path := filepath.Join(binDir, "hearsay")
	if out, err := exec.Command(goCmd, "build", "-o", path, "../cmd/hearsay").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return path, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, hearsay(t), args...).Output()
	require.NoError(t, err, "hearsay %s", strings.Join(args, " "))
	return string(out)
}

// helpFlag is a flag as --help shows it.
type helpFlag struct{ def, env string }

var helpLineRE = regexp.MustCompile(`^\s+--([a-z][a-z-]*)(?:, -\w)?\s.*?(?:\(default: ([^()]*)\))?(?: \[\$(\w+)\])?$`)

func helpFlags(t *testing.T, command ...string) map[string]helpFlag {
	t.Helper()
	flags := map[string]helpFlag{}
	_, opts, ok := strings.Cut(run(t, append(command, "--help")...), "OPTIONS:")
	require.True(t, ok)
	for _, line := range strings.Split(opts, "\n") {
		if m := helpLineRE.FindStringSubmatch(line); m != nil && m[1] != "help" {
			flags[m[1]] = helpFlag{def: m[2], env: m[3]}
		}
	}
	require.NotEmpty(t, flags)
	return flags
}

// section returns the text under the heading that starts with title, to
// the next heading of the same level or higher.
func section(t *testing.T, text, title string) string {
	t.Helper()
	level := strings.Index(title, " ")
	var lines []string
	in, fenced := false, false
	for _, line := range strings.Split(text, "\n") {
		fenced = fenced != strings.HasPrefix(line, "```")
		if n := strings.Index(line, "# ") + 1; !fenced && n > 0 && n <= level && strings.Trim(line[:n], "#") == "" {
			if in {
				break
			}
			in = strings.HasPrefix(line, title)
			continue
		}
		if in {
			lines = append(lines, line)
		}
	}
	require.NotEmpty(t, lines, "no heading %q", title)
	return strings.Join(lines, "\n")
}

var (
	flagCellRE = regexp.MustCompile("`--([a-z][a-z-]*)")
	literalRE  = regexp.MustCompile("^`([^`]*)`|^(\\d\\S*)(?: |$)")
)

// checkFlagTable checks the flag table of a doc's section against the
// command's --help: the same flags, and the same defaults and environment
// variables where the table gives them as literals.
func checkFlagTable(t *testing.T, doc, title string, command ...string) {
	t.Helper()
	help := helpFlags(t, command...)
	documented := map[string]bool{}
	where := fmt.Sprintf("%s, %q: hearsay %s", doc, title, strings.Join(command, " "))
	for _, line := range strings.Split(section(t, readDoc(t, doc), title), "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), " | ")
		names := flagCellRE.FindAllStringSubmatch(cells[0], -1)
		if !strings.HasPrefix(line, "|") || len(names) == 0 || len(cells) < 3 {
			continue
		}
		for _, n := range names {
			documented[n[1]] = true
			assert.Contains(t, help, n[1], "%s documents --%s", where, n[1])
		}
		h, ok := help[names[0][1]]
		if len(names) > 1 || !ok {
			continue
		}
		def := cells[len(cells)-2]
		if env := strings.Trim(cells[1], "`"); len(cells) == 4 && strings.HasPrefix(env, "HEARSAY_") {
			assert.Equal(t, h.env, env, "%s: --%s's variable", where, names[0][1])
		}
		switch lit := literalRE.FindStringSubmatch(def); {
		case strings.HasPrefix(def, "none"):
			assert.Empty(t, h.def, "%s: --%s has a default", where, names[0][1])
		case lit != nil:
			assert.Equal(t, h.def, lit[1]+lit[2], "%s: --%s's default", where, names[0][1])
		}
	}
	for name := range help {
		assert.True(t, documented[name], "%s lacks --%s", where, name)
	}
}

func TestFlagTablesMatchHelp(t *testing.T) {
	checkFlagTable(t, "README.md", "## Configuration", "agent")
	checkFlagTable(t, "docs/cli.md", "## hearsay agent", "agent")
	checkFlagTable(t, "docs/cli.md", "## hearsay push", "push")
	checkFlagTable(t, "docs/cli.md", "## hearsay subscribe", "subscribe")
	checkFlagTable(t, "docs/cli.md", "## hearsay status and hearsay peers", "status")
	checkFlagTable(t, "docs/cli.md", "## hearsay status and hearsay peers", "peers")
	checkFlagTable(t, "docs/cli.md", "## hearsay demo", "demo")
	checkFlagTable(t, "docs/simulations.md", "## Running it", "simulate")
	checkFlagTable(t, "docs/bench.md", "## Flags", "bench")
}

func TestVersionsAgree(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(run(t, "version")), "\n")
	require.Len(t, lines, 3)
	wire := lines[2]
	example := regexp.MustCompile(`\n\$ go build -o hearsay ./cmd/hearsay && ./hearsay version\nhearsay \S+\ngo1\.\S+\n` + wire + `\n\$ ./hearsay --version\nhearsay version \S+\n`)
	assert.True(t, example.MatchString(readDoc(t, "docs/cli.md")), "cli.md's example of hearsay version, %q then %q", lines, wire)
	assert.Regexp(t, `^hearsay \S+$`, lines[0])
	assert.Equal(t, "hearsay version "+strings.TrimPrefix(lines[0], "hearsay ")+"\n", run(t, "--version"))
	want(t, "docs/protocol.md", "# hearsay wire protocol, "+strings.TrimPrefix(wire, "wire ")+" ")
}

// want asserts that a doc, its lines joined, says each phrase.
func want(t *testing.T, doc string, phrases ...string) {
	t.Helper()
	text := flat(readDoc(t, doc))
	for _, p := range phrases {
		assert.True(t, strings.Contains(text, p), "%s does not say %q", doc, p)
	}
}

var summaryRE = regexp.MustCompile(`after (\d+) rounds .*theory: (\d+) \(sub-rounds\), (\d+) \(pulls at their own phase\), (\d+) \(classic pull\)\nper node: ([\d.]+) duplicates, (\d+) bytes sent`)

var latencyRE = regexp.MustCompile(`p50 (\d+) ms, p90 (\d+) ms, p99 (\d+) ms, max (\d+) ms`)

// The rounds at 1,000 nodes are what `hearsay simulate` prints: with
// round-paced pulls for the theory's figures, with long-poll (the default)
// for its own.
func TestSimulatedRounds(t *testing.T) {
	sim := func(args ...string) ([]string, string) {
		out := run(t, append([]string{"simulate", "--nodes", "1000", "--out", t.TempDir()}, args...)...)
		m := summaryRE.FindStringSubmatch(out)
		require.NotNil(t, m, out)
		return m[1:], out
	}
	clean, _ := sim("--long-poll", "0")
	lossy, _ := sim("--long-poll", "0", "--loss", "20%")
	rounds, sub, async, classic, dups, sent := clean[0], clean[1], clean[2], clean[3], clean[4], clean[5]
	require.Equal(t, "0.000", dups)
	want(t, "README.md",
		fmt.Sprintf("| rounds to 100%% delivery with round-paced pulls, N = 1,000, no loss / 20%% loss | %s / %s |", rounds, lossy[0]),
		fmt.Sprintf("a message reaches 1,000 nodes in %s rounds", rounds))
	lp, out := sim()
	l := latencyRE.FindStringSubmatch(out)
	require.NotNil(t, l, out)
	want(t, "docs/simulations.md",
		fmt.Sprintf("| 10³ | 1ms | %s | %s / %s / %s ms | %s ms | %s |", lp[0], l[1], l[2], l[3], l[4], lp[4]),
		fmt.Sprintf("| 10³ | %s | %s ms | %s | %s |", lp[0], l[4], lp[4], lp[5]))
	want(t, "docs/simulations.md",
		fmt.Sprintf("| 10³ | %s | %s / %s / %s | 0 | %s |", rounds, async, sub, classic, sent),
		fmt.Sprintf("It predicts %s rounds at 1,000 nodes", async),
		fmt.Sprintf("prints `theory: %s (sub-rounds), %s (pulls at their own phase), %s (classic pull)` beside its own %s", sub, async, classic, rounds),
		fmt.Sprintf("fanout 3 and no loss: %s rounds at 1,000 nodes", rounds),
		fmt.Sprintf("%s rounds at 1,000 nodes, 10 at 10,000 (`hearsay simulate --nodes 1000 --loss 20%% --long-poll 0`)", lossy[0]))
}

type sampler struct{}

func (sampler) SamplePeers(_ *rand.Rand, _ int, dst []netip.AddrPort) []netip.AddrPort { return dst }

// coreChunks is the number of chunks a core with datagrams of packetSize
// bytes cuts a 1 MiB message on files.big into.
func coreChunks(t *testing.T, packetSize int) int {
	t.Helper()
	c, err := gossip.New(gossip.Config{ID: gossip.NodeID{1}, Peers: sampler{}, MaxPacketSize: packetSize})
	require.NoError(t, err)
	_, err = c.Push(time.Now(), "files.big", make([]byte, 1<<20))
	require.NoError(t, err)
	return int(c.Stats().Chunks)
}

// agent runs `hearsay agent` on 127.0.0.1 with its API on a Unix socket
// and returns a client of that API.
func agent(t *testing.T) *http.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0") // a free port for gossip
	require.NoError(t, err)
	bind := conn.LocalAddr().String()
	require.NoError(t, conn.Close())
	sock := filepath.Join(t.TempDir(), "api.sock")
	cmd := exec.Command(hearsay(t), "agent", "--bind", bind, "--api", "unix:"+sock,
		"--data-dir", "", "--filter", "memory", "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	started := make(chan string, 1) // "" once running, else what it logged
	go func() {
		var logged strings.Builder
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			var entry struct{ Msg string }
			if json.Unmarshal(lines.Bytes(), &entry) == nil && entry.Msg == "hearsay agent running" {
				started <- ""
				_, _ = io.Copy(io.Discard, stderr)
				return
			}
			logged.WriteString(lines.Text() + "\n")
		}
		started <- logged.String()
	}()
	select {
	case logged := <-started:
		require.Empty(t, logged, "the agent stopped before it ran")
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not start within 30 s")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
}

func get(t *testing.T, c *http.Client, path string) []byte {
	t.Helper()
	resp, err := c.Get("http://agent" + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	return body
}

func post(t *testing.T, c *http.Client, path string, body []byte) (int, string) {
	t.Helper()
	resp, err := c.Post("http://agent"+path, "application/octet-stream", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var answer struct{ Error string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
	return resp.StatusCode, answer.Error
}

var sampleRE = regexp.MustCompile(`^hearsay_(\w+?)(?:_bucket|_sum|_count)?(?:\{(.*)\})? `)
var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

func TestAgentAgreesWithAPIDoc(t *testing.T) {
	api := readDoc(t, "docs/api.md")
	c := agent(t)

	// Every metric, and every value of its labels, is in the table; every
	// metric of the table is exported.
	table := map[string]string{}
	for _, line := range strings.Split(section(t, api, "## `GET /metrics`"), "\n") {
		cells := strings.Split(line, " | ")
		if strings.HasPrefix(line, "| `") && len(cells) >= 3 {
			for _, m := range codeSpanRE.FindAllStringSubmatch(cells[0], -1) {
				table[m[1]] = cells[len(cells)-1]
			}
		}
	}
	exported := map[string]bool{}
	runtimeMetrics := false
	for _, line := range strings.Split(string(get(t, c, "/metrics")), "\n") {
		runtimeMetrics = runtimeMetrics || strings.HasPrefix(line, "go_goroutines ")
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		exported[m[1]] = true
		labels, ok := table[m[1]]
		if !assert.True(t, ok, "api.md's metrics table lacks hearsay_%s", m[1]) {
			continue
		}
		for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
			if l[1] != "le" {
				assert.Contains(t, labels, "`"+l[1]+"`", "hearsay_%s's label", m[1])
				assert.Contains(t, labels, "`"+l[2]+"`", "hearsay_%s{%s=%q} in api.md", m[1], l[1], l[2])
			}
		}
	}
	for name := range table {
		assert.True(t, exported[name], "api.md's metrics table has hearsay_%s, which the agent does not export", name)
	}
	assert.True(t, runtimeMetrics, "api.md: the agent exports the Go runtime metrics")

	// Every field of /v1/status is in the example, and the example has no other.
	var status map[string]any
	require.NoError(t, json.Unmarshal(get(t, c, "/v1/status"), &status))
	_, example, _ := strings.Cut(section(t, api, "## `GET /v1/status`"), "```json")
	example, _, _ = strings.Cut(example, "```")
	var documented map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.ReplaceAll(example, "…", "")), &documented))
	for k := range status {
		assert.Contains(t, documented, k, "api.md's /v1/status example")
	}
	for k := range documented {
		assert.Contains(t, status, k, "/v1/status")
	}
	var peers map[string]any
	require.NoError(t, json.Unmarshal(get(t, c, "/v1/peers"), &peers))
	for k := range peers {
		assert.True(t, strings.Contains(section(t, api, "## `GET /v1/peers`"), "| `"+k+"` |"), "api.md's /v1/peers table lacks %s", k)
	}

	// The 1 MiB figures: chunks in an agent and in a bare core, and the 413.
	code, msg := post(t, c, "/v1/messages?topic=files.big", make([]byte, 1<<20))
	require.Equal(t, http.StatusAccepted, code, msg)
	require.NoError(t, json.Unmarshal(get(t, c, "/v1/status"), &status))
	inAgent := int(status["cache_messages"].(float64))
	inCore := coreChunks(t, 1400)
	want(t, "README.md", fmt.Sprintf("(%d chunks of 1,400-byte datagrams)", inCore),
		fmt.Sprintf("A 1 MiB message is %d chunks when the core has the whole 1,400-byte datagram", inCore),
		fmt.Sprintf("the same message on the topic `files.big` is %d chunks there", inAgent))
	want(t, "docs/api.md", fmt.Sprintf("a 1 MiB message on the topic `files.big` takes %d of its 100,000 places", inAgent))
	want(t, "docs/protocol.md", fmt.Sprintf("a 1 MiB message takes %d numbers in an agent", inAgent),
		fmt.Sprintf("and %d chunks (`go test -v -run LargeMessageReachesTwentyNodes ./gossip`", inCore),
		fmt.Sprintf("and %d chunks (`head -c 1048576 /dev/urandom | hearsay push --topic files.big`", inAgent),
		fmt.Sprintf("a 1 MiB message in %d chunks from one of 20 cores", inCore))
	code, msg = post(t, c, "/v1/messages?topic=files.big", make([]byte, 1<<20+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, code)
	want(t, "docs/cli.md", "`hearsay: agent answered 413: "+msg+"`")
	want(t, "docs/api.md", "`"+msg+"`")
}
