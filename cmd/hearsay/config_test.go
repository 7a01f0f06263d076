package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// The same settings in the three formats give the same configuration;
// peers may be a list or a comma-separated string.
func TestConfigFileFormats(t *testing.T) {
	clearEnv(t)
	files := map[string]string{
		"a.yaml": "bind: 127.0.0.1:7700\npeers:\n  - 127.0.0.1:7710\n  - 127.0.0.1:7720\nfanout: 4\ninterval: 50ms\nfilter: memory\ndata-dir: \"\"\n",
		"a.yml":  "bind: 127.0.0.1:7700\npeers: 127.0.0.1:7710,127.0.0.1:7720\nfanout: \"4\"\ninterval: 50ms\nfilter: memory\ndata-dir: ''\n",
		"a.toml": "bind = \"127.0.0.1:7700\"\npeers = [\"127.0.0.1:7710\", \"127.0.0.1:7720\"]\nfanout = 4\ninterval = \"50ms\"\nfilter = \"memory\"\ndata-dir = \"\"\n",
		"a.json": `{"bind": "127.0.0.1:7700", "peers": ["127.0.0.1:7710", "127.0.0.1:7720"], "fanout": 4, "interval": "50ms", "filter": "memory", "data-dir": ""}`,
	}
	for name, text := range files {
		res := runCLI(t, "", "agent", "--config", writeFile(t, name, text))
		require.Equal(t, exitOK, res.code, "%s: %s", name, res.stderr)
		cfg := res.agent
		assert.Equal(t, "127.0.0.1:7700", cfg.Bind, name)
		assert.Equal(t, []string{"127.0.0.1:7710", "127.0.0.1:7720"}, cfg.Peers, name)
		assert.Equal(t, 4, cfg.Gossip.Fanout, name)
		assert.Equal(t, 50*time.Millisecond, cfg.Gossip.Interval, name)
		assert.Equal(t, "", cfg.DataDir, name)
		assert.Equal(t, "memory", cfg.Filter, name)
	}
}

// Flags beat HEARSAY_ variables, which beat the file, which beats the
// defaults.
func TestConfigFilePrecedence(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, "p.yaml", "fanout: 4\ninterval: 50ms\ncache-rounds: 40\n")
	t.Setenv("HEARSAY_INTERVAL", "70ms")
	t.Setenv("HEARSAY_CACHE_ROUNDS", "50")
	res := runCLI(t, "", "agent", "--config", path, "--cache-rounds", "60")
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.Equal(t, 4, res.agent.Gossip.Fanout, "the file over the default")
	assert.Equal(t, 70*time.Millisecond, res.agent.Gossip.Interval, "the environment over the file")
	assert.Equal(t, 60, res.agent.Gossip.CacheRounds, "the flag over both")
	assert.Equal(t, "leveldb", res.agent.Filter, "the default where nothing is said")

	t.Setenv("HEARSAY_CONFIG", path)
	res = runCLI(t, "", "agent")
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.Equal(t, 4, res.agent.Gossip.Fanout, "HEARSAY_CONFIG names the file too")
}

// Every kind of mistake in a file stops the agent with status 2 and a
// message naming the file and the key.
func TestConfigFileErrors(t *testing.T) {
	clearEnv(t)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	cases := []struct{ name, text, want string }{
		{"unknown.yaml", "fanout: 3\nfan-out: 4\n", `unknown key "fan-out" (the keys are the agent's long flag names`},
		{"nested.toml", "[gossip]\nfanout = 3\n", `unknown key "gossip.fanout"`},
		{"self.yaml", "config: other.yaml\n", `unknown key "config"`},
		{"print.json", `{"print-config": true}`, `unknown key "print-config"`},
		{"bool.yaml", "log-level: true\n", `key "log-level": want a string or a number, got the boolean true`},
		{"list.yaml", "bind: [a, b]\n", `key "bind": want a single value, got a list`},
		{"table.json", `{"peers": [{"host": "a"}]}`, `key "peers": in the list: want a string or a number, got a table`},
		{"null.yaml", "bind:\n", `key "bind": want a string or a number, got nothing (null)`},
		{"range.json", `{"fanout": 400}`, `key "fanout": must be between 1 and 64, got 400`},
		{"duration.toml", "interval = 5\n", `key "interval": want a duration such as 200ms, 5s or 1m30s, got "5"`},
		{"choice.yaml", "registry: consul\n", `key "registry": must be one of static, dht, memberlist, dns, got "consul"`},
		{"peer.yaml", "peers: [nohost]\n", `key "peers": want host:port, got "nohost"`},
		{"syntax.yaml", "bind: [\n", `not valid YAML`},
		{"syntax.toml", "bind = \n", `not valid TOML`},
		{"syntax.json", `{"bind": `, `not valid JSON`},
	}
	for _, tc := range cases {
		path := writeFile(t, tc.name, tc.text)
		res := runCLI(t, "", "agent", "--config", path)
		require.Equal(t, exitUsage, res.code, "%s: %s", tc.name, res.stderr)
		assert.Contains(t, res.stderr, "hearsay: --config "+path+": ", tc.name)
		assert.Contains(t, res.stderr, tc.want, tc.name)
		assert.Equal(t, 1, strings.Count(res.stderr, "\n"), tc.name)
		assert.Nil(t, res.agent, "%s: the agent must not start", tc.name)
	}
	for _, tc := range []struct{ path, want string }{
		{writeFile(t, "agent.ini", "bind=x"), "the name must end in .yaml, .yml, .toml or .json"},
		{missing, "no such file or directory"},
	} {
		res := runCLI(t, "", "agent", "--config", tc.path)
		require.Equal(t, exitUsage, res.code, res.stderr)
		assert.True(t, strings.HasPrefix(res.stderr, "hearsay: --config: "), res.stderr)
		assert.Contains(t, res.stderr, tc.path)
		assert.Contains(t, res.stderr, tc.want)
	}
	// A bad value on the command line is still the flag's, not the file's.
	res := runCLI(t, "", "agent", "--config", writeFile(t, "ok.yaml", "fanout: 4\n"), "--interval", "x")
	require.Equal(t, exitUsage, res.code)
	assert.Equal(t, "hearsay: --interval: want a duration such as 200ms, 5s or 1m30s, got \"x\"\n", res.stderr)
}

// --print-config prints what the agent would run with; fed back as the
// config file, in any format, it gives the same configuration again.
func TestPrintConfigRoundTrip(t *testing.T) {
	clearEnv(t)
	for _, ext := range []string{"yaml", "toml", "json"} {
		path := writeFile(t, "in."+ext, "")
		require.NoError(t, os.WriteFile(path, []byte(map[string]string{
			"yaml": "peers: [127.0.0.1:7710, 127.0.0.1:7720]\nfanout: 5\nname: web-1\napi-token: \"12345\"\n",
			"toml": "peers = [\"127.0.0.1:7710\", \"127.0.0.1:7720\"]\nfanout = 5\nname = \"web-1\"\napi-token = \"12345\"\n",
			"json": `{"peers": ["127.0.0.1:7710", "127.0.0.1:7720"], "fanout": 5, "name": "web-1", "api-token": "12345"}`,
		}[ext]), 0o600))
		first := runCLI(t, "", "agent", "--config", path, "--interval", "75ms", "--print-config")
		require.Equal(t, exitOK, first.code, first.stderr)
		require.Nil(t, first.agent, "print-config does not start the agent")
		assert.Contains(t, first.stdout, "75ms", "the flag's value is printed")

		again := writeFile(t, "printed."+ext, first.stdout)
		second := runCLI(t, "", "agent", "--config", again, "--print-config")
		require.Equal(t, exitOK, second.code, second.stderr)
		assert.Equal(t, first.stdout, second.stdout, ext)

		direct := runCLI(t, "", "agent", "--config", path, "--interval", "75ms")
		viaPrinted := runCLI(t, "", "agent", "--config", again)
		require.Equal(t, exitOK, viaPrinted.code, viaPrinted.stderr)
		direct.agent.ConfigFile, viaPrinted.agent.ConfigFile = "", ""
		assert.Equal(t, *direct.agent, *viaPrinted.agent, ext)
		assert.Equal(t, "12345", viaPrinted.agent.APIToken)
	}
	res := runCLI(t, "", "agent", "--print-config", "--fanout", "7")
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.Contains(t, res.stdout, "fanout: 7\n", "YAML without a file")
}

// The file's keys are the flags, whatever the flags: a repeatable flag
// takes a list, a boolean flag a boolean, with no code for either.
func TestConfigFileIsGenericOverFlags(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, "g.yaml", "handler: [a, b]\nverbose: true\nlevel: 3\n")
	var handlers []string
	var verbose bool
	var level string
	app := &cli.App{Name: "x", Commands: []*cli.Command{{
		Name: "agent",
		Flags: []cli.Flag{stringFlag("config", "", ""), &cli.StringSliceFlag{Name: "handler"},
			&cli.BoolFlag{Name: "verbose"}, stringFlag("level", "1", "")},
		Action: func(c *cli.Context) error {
			if _, err := applyConfigFile(c); err != nil {
				return err
			}
			handlers, verbose, level = c.StringSlice("handler"), c.Bool("verbose"), c.String("level")
			return nil
		},
	}}}
	require.NoError(t, app.RunContext(context.Background(), []string{"x", "agent", "--config", path}))
	assert.Equal(t, []string{"a", "b"}, handlers)
	assert.True(t, verbose)
	assert.Equal(t, "3", level)

	require.NoError(t, app.RunContext(context.Background(), []string{"x", "agent", "--config", path, "--handler", "c"}))
	assert.Equal(t, []string{"c"}, handlers, "the command line replaces the file's list")

	bad := writeFile(t, "b.yaml", "verbose: maybe\n")
	err := app.RunContext(context.Background(), []string{"x", "agent", "--config", bad})
	require.Error(t, err)
	assert.Equal(t, `--config `+bad+`: key "verbose": want true or false, got the string "maybe"`, err.Error())
}
