package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/client"
	"github.com/hearsay-io/hearsay/node"
)

// apiFlags are the flags of the commands that talk to an agent. They read
// HEARSAY_API, HEARSAY_API_TOKEN and HEARSAY_API_TOKEN_FILE, like the
// agent's own, so one environment serves both.
func apiFlags() []cli.Flag {
	return []cli.Flag{
		stringFlag("api", "127.0.0.1:7601", "the agent's API: `HOST:PORT`, an http:// or https:// URL, or unix:/PATH"),
		stringFlag("api-token", "", "bearer `TOKEN` the agent's API requires (agent --api-token)"),
		stringFlag("api-token-file", "", "`FILE` holding the API token, kept out of the process list"),
		stringFlag("api-ca", "", "PEM `FILE` of the certificate (or its CA) an https:// agent must present; default: the system's roots"),
	}
}

// newAPIClient returns a client of the agent the flags name.
func newAPIClient(c *cli.Context, opts ...client.Option) (*client.Client, error) {
	token, err := tokenValue(c, "api-token", "api-token-file")
	if err != nil {
		return nil, err
	}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	if ca := flagValue(c, "api-ca"); ca != "" {
		if _, err := os.Stat(ca); err != nil {
			return nil, flagErrorf("api-ca", "%v", err)
		}
		opts = append(opts, client.WithCAFile(ca))
	}
	cl, err := client.New(flagValue(c, "api"), opts...)
	switch {
	case errors.Is(err, client.ErrBadAddress):
		return nil, flagErrorf("api", "%v", err)
	case err != nil:
		return nil, flagErrorf("api-ca", "%v", err)
	}
	return cl, nil
}

// tokenValue returns the API token of tokenFlag, or the content of the file
// fileFlag names (a trailing newline is not part of it); "" if neither.
func tokenValue(c *cli.Context, tokenFlag, fileFlag string) (string, error) {
	token, path := flagValue(c, tokenFlag), flagValue(c, fileFlag)
	if path == "" {
		return token, nil
	}
	if token != "" {
		return "", flagErrorf(fileFlag, "give --%s or --%s, not both", tokenFlag, fileFlag)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", flagErrorf(fileFlag, "%v", err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return "", flagErrorf(fileFlag, "%s is empty", path)
	}
	if bytes.ContainsAny(b, "\r\n") {
		return "", flagErrorf(fileFlag, "%s holds more than one line", path)
	}
	return string(b), nil
}

// agentError adds a hint to an error from the client: where a failure to
// reach the agent may come from.
func agentError(err error) error {
	if errors.Is(err, client.ErrUnreachable) {
		return fmt.Errorf("%w (is hearsay agent running? see --api)", err)
	}
	return err
}

// apiSecurityFromFlags reads the agent's --api-allow-origin, --api-tls-cert,
// --api-tls-key and --api-debug into cfg, whose API and APIToken are set.
func apiSecurityFromFlags(c *cli.Context, cfg *agentConfig) error {
	for _, o := range strings.Split(flagValue(c, "api-allow-origin"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.APIOrigins = append(cfg.APIOrigins, o)
		}
	}
	if err := node.CheckAllowOrigins(cfg.APIOrigins, cfg.APIToken); err != nil {
		return flagErrorf("api-allow-origin", "%v", err)
	}
	certFile, keyFile := flagValue(c, "api-tls-cert"), flagValue(c, "api-tls-key")
	switch {
	case certFile == "" && keyFile == "":
	case certFile == "":
		return flagErrorf("api-tls-key", "needs --api-tls-cert")
	case keyFile == "":
		return flagErrorf("api-tls-cert", "needs --api-tls-key")
	case strings.HasPrefix(cfg.API, "unix:"):
		return flagErrorf("api-tls-cert", "not with a Unix socket (--api %s), which only this machine's users can reach", cfg.API)
	default:
		tlsCfg, err := node.APITLSConfig(certFile, keyFile)
		if err != nil {
			return flagErrorf("api-tls-cert", "%v", err)
		}
		cfg.APITLS = tlsCfg
	}
	cfg.APIDebug = c.Bool("api-debug")
	return nil
}
