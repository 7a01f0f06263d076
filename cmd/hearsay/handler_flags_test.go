package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/handler"
)

// --handler is repeatable, takes each value whole (commas included), and
// reads HEARSAY_HANDLER; its defaults are the library's; bad values are
// usage errors naming the flag.
func TestAgentHandlerFlags(t *testing.T) {
	clearEnv(t)
	res := runCLI(t, "", "agent")
	require.Equal(t, exitOK, res.code, res.stderr)
	def := handler.DefaultConfig()
	assert.Empty(t, res.agent.Handlers.Handlers)
	assert.Equal(t, def.Timeout, res.agent.Handlers.Timeout)
	assert.Equal(t, def.Concurrency, res.agent.Handlers.Concurrency)

	res = runCLI(t, "", "agent", "--handler", "orders.>=cut -d, -f1 >> /tmp/orders", "--handler", ">=logger -t hearsay",
		"--handler-timeout", "5s", "--handler-concurrency", "2")
	require.Equal(t, exitOK, res.code, res.stderr)
	var specs []string
	for _, s := range res.agent.Handlers.Handlers {
		specs = append(specs, s.String())
	}
	assert.Equal(t, []string{"orders.>=cut -d, -f1 >> /tmp/orders", ">=logger -t hearsay"}, specs)
	assert.Equal(t, 5*time.Second, res.agent.Handlers.Timeout)
	assert.Equal(t, 2, res.agent.Handlers.Concurrency)

	// In a config file, handler is a list: each element one handler.
	conf := writeFile(t, "agent.yaml", "handler:\n  - 'orders.>=cut -d, -f1'\n  - '>=true'\nhandler-concurrency: 3\n")
	res = runCLI(t, "", "agent", "--config", conf)
	require.Equal(t, exitOK, res.code, res.stderr)
	specs = nil
	for _, s := range res.agent.Handlers.Handlers {
		specs = append(specs, s.String())
	}
	assert.Equal(t, []string{"orders.>=cut -d, -f1", ">=true"}, specs)
	assert.Equal(t, 3, res.agent.Handlers.Concurrency)

	t.Setenv("HEARSAY_HANDLER", "jobs.*=./run-job, fast")
	res = runCLI(t, "", "agent")
	require.Equal(t, exitOK, res.code, res.stderr)
	require.Len(t, res.agent.Handlers.Handlers, 1)
	assert.Equal(t, "jobs.*=./run-job, fast", res.agent.Handlers.Handlers[0].String())
	t.Setenv("HEARSAY_HANDLER", "")

	for args, want := range map[[2]string]string{
		{"--handler", "no command"}:        "--handler: handler \"no command\": want PATTERN=COMMAND",
		{"--handler", "bad..pattern=true"}: "--handler: handler \"bad..pattern=true\": pattern",
		{"--handler-timeout", "soon"}:      "--handler-timeout: want a duration",
		{"--handler-concurrency", "0"}:     "--handler-concurrency: must be between 1 and 1024",
	} {
		res = runCLI(t, "", "agent", args[0], args[1])
		assert.Equal(t, exitUsage, res.code, "%v", args)
		assert.Contains(t, res.stderr, want, "%v", args)
	}
}
