package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hearsay-io/hearsay/internal/testcert"
)

// writeFile writes content to a new file name in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestAgentAPISecurityFlags(t *testing.T) {
	clearEnv(t)
	certFile, keyFile := testcert.Write(t)
	tokenFile := writeFile(t, "token", "s3cret\n")
	res := runCLI(t, "", "agent", "--api-token-file", tokenFile, "--api-tls-cert", certFile, "--api-tls-key", keyFile,
		"--api-allow-origin", "https://app.example.com, http://localhost:3000", "--api-debug")
	require.Equal(t, exitOK, res.code, res.stderr)
	cfg := res.agent
	assert.Equal(t, "s3cret", cfg.APIToken, "the file's line, without its newline")
	assert.Equal(t, []string{"https://app.example.com", "http://localhost:3000"}, cfg.APIOrigins)
	require.NotNil(t, cfg.APITLS)
	assert.Len(t, cfg.APITLS.Certificates, 1)
	assert.True(t, cfg.APIDebug)

	t.Setenv("HEARSAY_API_ALLOW_ORIGIN", "*")
	res = runCLI(t, "", "agent")
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.Equal(t, []string{"*"}, res.agent.APIOrigins, "any origin, without a token")
	assert.Nil(t, res.agent.APITLS)
	assert.False(t, res.agent.APIDebug)
}

func TestAPISecurityFlagErrors(t *testing.T) {
	certFile, keyFile := testcert.Write(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	empty := writeFile(t, "empty", "\n")
	twoLines := writeFile(t, "two", "one\ntwo\n")
	token := writeFile(t, "token", "s3cret")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"agent", "--api-token", "t", "--api-allow-origin", "*"}, `--api-allow-origin: "*" allows every origin, which a token-protected API must not: list the origins`},
		{[]string{"agent", "--api-token-file", token, "--api-allow-origin", "*"}, `--api-allow-origin: "*" allows every origin`},
		{[]string{"agent", "--api-allow-origin", "app.example.com"}, `--api-allow-origin: "app.example.com" is not an origin`},
		{[]string{"agent", "--api-tls-cert", missing, "--api-tls-key", keyFile}, "--api-tls-cert: stat " + missing + ": no such file or directory"},
		{[]string{"agent", "--api-tls-cert", certFile, "--api-tls-key", missing}, "--api-tls-cert: stat " + missing + ": no such file or directory"},
		{[]string{"agent", "--api-tls-cert", keyFile, "--api-tls-key", certFile}, "--api-tls-cert: loading the certificate"},
		{[]string{"agent", "--api-tls-cert", certFile}, "--api-tls-cert: needs --api-tls-key"},
		{[]string{"agent", "--api-tls-key", keyFile}, "--api-tls-key: needs --api-tls-cert"},
		{[]string{"agent", "--api", "unix:/tmp/h.sock", "--api-tls-cert", certFile, "--api-tls-key", keyFile}, "--api-tls-cert: not with a Unix socket"},
		{[]string{"agent", "--api-token", "t", "--api-token-file", token}, "--api-token-file: give --api-token or --api-token-file, not both"},
		{[]string{"agent", "--api-token-file", missing}, "--api-token-file: open " + missing},
		{[]string{"agent", "--api-token-file", empty}, "--api-token-file: " + empty + " is empty"},
		{[]string{"agent", "--api-token-file", twoLines}, "holds more than one line"},
		{[]string{"status", "--api-token-file", missing}, "--api-token-file: open " + missing},
		{[]string{"status", "--api-ca", missing}, "--api-ca: stat " + missing},
		{[]string{"status", "--api-ca", token}, "--api-ca: the CA file " + token + " holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			clearEnv(t)
			res := runCLI(t, "", tt.args...)
			assert.Equal(t, exitUsage, res.code)
			assert.Nil(t, res.agent, "the agent must not start")
			assert.Equal(t, 1, strings.Count(res.stderr, "\n"), "one line: %q", res.stderr)
			assert.Contains(t, res.stderr, tt.want)
		})
	}
}
