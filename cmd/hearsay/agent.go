package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/handler"
	"github.com/hearsay-io/hearsay/node"
	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/registry/dns"
	"github.com/hearsay-io/hearsay/registry/memberlist"
	"github.com/hearsay-io/hearsay/registry/static"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/wire"
)

// Registry kinds.
const (
	registryStatic     = "static"
	registryDHT        = "dht"
	registryMemberlist = "memberlist"
	registryDNS        = "dns"
)

// agentConfig is the agent's configuration, checked in full before anything
// starts.
type agentConfig struct {
	Name      string   // empty: the name stored in DataDir, or hostname plus a suffix
	Bind      string   // UDP host:port for gossip
	Advertise string   // host:port peers use for this node; empty: Bind
	API       string   // TCP host:port of the HTTP API; empty: no API
	Peers     []string // host:port entries of --peers (and of --join with the static registry)
	PeersFile string   // empty: none
	Registry  string   // registryStatic, registryDHT or registryMemberlist
	Join      []string // --join: gossip addresses (dht), memberlist addresses (memberlist) or DNS names (dns)

	DNSInterval time.Duration // re-resolve --join's names this often (dns)
	DNSServer   string        // host:port of the DNS server to ask (dns); empty: the system's resolver

	MemberlistPort    int                // 0: the gossip port + 2
	MemberlistProfile memberlist.Profile // memberlist's timings
	DataDir           string             // empty: nothing kept (memory filter only)
	Filter            string             // node.FilterLevelDB or node.FilterMemory
	Gossip            gossip.Config      // the flags' fields, Retention and AEInterval (negative: off) included
	LogMaxBytes       int64              // --log-max-bytes: the message log's bound
	LogLevel          slog.Level
	LogFormat         string // "text" or "json"

	Cluster      string        // salts the passphrase's key
	Passphrase   []byte        // from --passphrase-file or HEARSAY_PASSPHRASE; empty: no encryption
	APIToken     string        // empty: the API needs no token
	APIOrigins   []string      // --api-allow-origin: origins given CORS headers
	APITLS       *tls.Config   // --api-tls-cert and --api-tls-key; nil: plain HTTP
	APIDebug     bool          // --api-debug: /debug/pprof/ on the API
	ReplayWindow time.Duration // sealed datagrams' timestamp window
	Cipher       security.Suite
	Sign         bool // sign published messages, require signatures

	ValidateURL     string        // empty: no validator
	ValidateTimeout time.Duration // each call's bound

	ConfigFile string         // --config; empty: none
	Settings   map[string]any // every flag's effective value, by name: what --print-config prints, what SIGHUP compares

	Handlers handler.Config // --handler, --handler-timeout, --handler-concurrency
}

func (p *program) agentCommand() *cli.Command {
	def := node.DefaultConfig() // the flags' defaults are the library's
	hdef := handler.DefaultConfig()
	return &cli.Command{
		Name:  "agent",
		Usage: "run a node until interrupted (SIGHUP re-reads --peers-file and --config)",
		Description: "Runs a gossip node on --bind (UDP) and its HTTP API on --api (TCP). Give every agent\n" +
			"of a cluster the same --peers list: an agent leaves itself out of it.\n" +
			"SIGINT or SIGTERM stop the agent gracefully; SIGHUP re-reads --peers-file and\n" +
			"re-resolves the peers' host names (a changed file is also picked up within a second),\n" +
			"and --config's file: the log level and the static peers change live.",
		Flags: []cli.Flag{
			stringFlag("config", "", "read settings from `FILE` (.yaml, .toml or .json) whose keys are these flags' long names; flags and HEARSAY_ variables take precedence; SIGHUP re-reads it"),
			boolFlag("print-config", false, "print the effective configuration (in --config's format, else YAML) and exit"),
			stringFlag("name", "", "the node's `NAME` in status and logs (default: the name kept in --data-dir, else hostname-xxxx)"),
			stringFlag("bind", def.Bind, "UDP `HOST:PORT` to gossip on"),
			stringFlag("advertise", "", "`HOST:PORT` other agents reach this one at, when it differs from --bind (NAT, 0.0.0.0)"),
			stringFlag("api", "127.0.0.1:7601", "`HOST:PORT` of the HTTP API, or unix:/PATH for a Unix socket (mode 0600); empty disables the API"),
			stringFlag("api-token", "", "require `TOKEN` as \"Authorization: Bearer TOKEN\" on every API endpoint but the probes /healthz and /readyz"),
			stringFlag("api-token-file", "", "`FILE` holding the API token (instead of --api-token, which the process list shows)"),
			stringFlag("api-allow-origin", "", "comma-separated `LIST` of browser origins (https://app.example.com) allowed to use the API (CORS); * allows any, only without a token"),
			stringFlag("api-tls-cert", "", "PEM `FILE` of the API's certificate, its chain after it: the API speaks HTTPS (with --api-tls-key)"),
			stringFlag("api-tls-key", "", "PEM `FILE` of the private key of --api-tls-cert"),
			boolFlag("api-debug", false, "serve the Go profiler at /debug/pprof/ on the API (behind the token if one is set)"),
			stringFlag("cluster", def.Cluster, "cluster `NAME`; with a passphrase it salts the key, so all agents of a cluster must agree"),
			stringFlag("passphrase-file", "", "`FILE` holding the cluster passphrase (or set HEARSAY_PASSPHRASE); without one, gossip is not encrypted"),
			stringFlag("cipher", security.DefaultSuite.String(), "cipher `SUITE` sealing every datagram: "+strings.Join(security.SuiteNames(), " or ")+" (hardware AES); every agent of a cluster must agree"),
			boolFlag("sign", def.Sign, "sign the messages this agent publishes with its node key, and accept no message its origin did not sign; turn it on in every agent of a cluster, once all run a version that knows signatures"),
			stringFlag("validate-url", "", "POST every message this agent is about to accept, or to publish, to `URL` (the JSON of a stream event's data) and take the status as the verdict: 2xx accept, 422 reject, 409 ignore; anything else, or no answer, holds the message back and asks again"),
			stringFlag("validate-timeout", durationText(def.ValidateTimeout), "give up a --validate-url call after `DURATION` (the message waits and is asked again)"),
			stringFlag("replay-window", durationText(security.DefaultReplayWindow), "drop sealed datagrams whose timestamp is further than `DURATION` from this clock"),
			listFlag("peers", "comma-separated `LIST` of HOST:PORT of the agents to gossip with; this agent's own address may be in it"),
			stringFlag("peers-file", "", "`FILE` of peers, one HOST:PORT per line, # starts a comment"),
			stringFlag("registry", registryStatic, "`KIND` of peer registry: static (--peers, --peers-file), dht (a Kademlia table over the gossip port), memberlist (hashicorp/memberlist on its own port) or dns (the addresses of --join's names)"),
			listFlag("join", "comma-separated `LIST` of HOST:PORT of agents to join: their gossip addresses (static: added to the peers; dht: bootstrap nodes), their memberlist addresses (memberlist), or NAME:PORT and _service._proto.name names to resolve (dns)"),
			stringFlag("dns-interval", durationText(dns.DefaultConfig().Interval), "re-resolve --join's names every `DURATION` with --registry dns"),
			stringFlag("dns-server", "", "`HOST:PORT` of the DNS server to ask with --registry dns (default: the system's resolver)"),
			stringFlag("memberlist-port", "0", "memberlist's TCP and UDP `PORT` with --registry memberlist; 0 means the gossip port + 2"),
			stringFlag("memberlist-profile", "lan", "memberlist's timings with --registry memberlist: lan, wan or local (`PROFILE`)"),
			stringFlag("data-dir", "./hearsay-data", "`DIR` keeping the node's identity and seen filter; empty keeps nothing (needs --filter memory)"),
			stringFlag("filter", node.FilterLevelDB, "seen filter `KIND`: leveldb (survives restarts, in --data-dir) or memory"),
			stringFlag("fanout", strconv.Itoa(def.Gossip.Fanout), "pull from `N` random peers per round (1 to 64)"),
			stringFlag("interval", durationText(def.Gossip.Interval), "`DURATION` of a gossip round"),
			stringFlag("long-poll", longPollText(def.Gossip.MaxPark), "keep pulls open at peers up to `DURATION`, so that new messages come as they arrive rather than at the next round (docs/latency.md); 0: round-paced pulls only"),
			stringFlag("max-packet-size", strconv.Itoa(def.Gossip.MaxPacketSize), "largest datagram in `BYTES` (512 to 65507); larger messages travel as chunks"),
			stringFlag("max-message-size", strconv.Itoa(def.Gossip.MaxMessageSize), "largest payload in `BYTES` a message may carry (1 to 1073741824); above one datagram it is sent as chunks"),
			stringFlag("cache-rounds", strconv.Itoa(def.Gossip.CacheRounds), "offer a new message to pullers for `N` rounds (1 to 100000)"),
			stringFlag("retention", durationText(def.Gossip.Retention), "keep accepted messages in the log for `DURATION` (at most 7d; days as 2d), for anti-entropy and resumed streams; older messages are refused"),
			stringFlag("log-max-bytes", strconv.FormatInt(def.LogMaxBytes, 10), "bound the message log to `BYTES` (at least 65536); past it the oldest messages go first, counted in hearsay_log_evicted_total"),
			stringFlag("ae-interval", durationText(def.Gossip.AEInterval), "reconcile with a random peer every `DURATION` (Merkle anti-entropy); 0 turns it off"),
			&cli.StringSliceFlag{Name: "handler", EnvVars: []string{envVar("handler")},
				Usage: "`SPEC` is PATTERN=COMMAND: run COMMAND (/bin/sh -c) for each delivered message whose topic matches PATTERN, the payload on stdin; retried until it succeeds, its progress kept in --data-dir; repeatable"},
			stringFlag("handler-timeout", durationText(hdef.Timeout), "kill a handler's command still running after `DURATION`, and retry it"),
			stringFlag("handler-concurrency", strconv.Itoa(hdef.Concurrency), "run at most `N` handler commands at once"),
			stringFlag("log-level", "info", "`LEVEL` of the logs: debug, info, warn or error"),
			stringFlag("log-format", "text", "`FORMAT` of the logs on stderr: text or json"),
		},
		Action: func(c *cli.Context) error {
			file, err := applyConfigFile(c)
			if err != nil {
				return err
			}
			cfg, err := agentConfigFromFlags(c)
			if err != nil {
				return file.attribute(err)
			}
			cfg.Settings = effectiveSettings(c)
			format := formatYAML
			if file != nil {
				cfg.ConfigFile, format = file.path, file.format
			}
			if c.Bool("print-config") {
				return printConfig(p.stdout, format, cfg.Settings)
			}
			return p.runAgent(c.Context, cfg)
		},
	}
}

// agentConfigFromFlags reads and checks the agent's flags.
func agentConfigFromFlags(c *cli.Context) (agentConfig, error) {
	var cfg agentConfig
	var err error
	if err := noArgs(c); err != nil {
		return cfg, err
	}
	if cfg.Name, err = nameValue(c, "name"); err != nil {
		return cfg, err
	}
	if cfg.Bind, err = hostPortValue(c, "bind"); err != nil {
		return cfg, err
	}
	if flagValue(c, "advertise") != "" {
		if cfg.Advertise, err = hostPortValue(c, "advertise"); err != nil {
			return cfg, err
		}
	}
	if api := flagValue(c, "api"); strings.HasPrefix(api, "unix:") {
		if api == "unix:" {
			return cfg, flagErrorf("api", "unix: needs a path, as in unix:/run/hearsay.sock")
		}
		cfg.API = api
	} else if api != "" {
		if cfg.API, err = hostPortValue(c, "api"); err != nil {
			return cfg, err
		}
	}
	if cfg.APIToken, err = tokenValue(c, "api-token", "api-token-file"); err != nil {
		return cfg, err
	}
	if err := apiSecurityFromFlags(c, &cfg); err != nil {
		return cfg, err
	}
	if cfg.Cluster = flagValue(c, "cluster"); cfg.Cluster == "" {
		return cfg, flagErrorf("cluster", "must not be empty")
	}
	if cfg.Cipher, err = security.ParseSuite(flagValue(c, "cipher")); err != nil {
		return cfg, flagErrorf("cipher", "%w", err)
	}
	cfg.Sign = c.Bool("sign")
	if cfg.ValidateURL = flagValue(c, "validate-url"); cfg.ValidateURL != "" {
		if u, err := url.Parse(cfg.ValidateURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, flagErrorf("validate-url", "want an http:// or https:// URL, got %q", cfg.ValidateURL)
		}
	}
	if cfg.ValidateTimeout, err = durationValue(c, "validate-timeout", time.Millisecond); err != nil {
		return cfg, err
	}
	if cfg.ReplayWindow, err = durationValue(c, "replay-window", time.Second); err != nil {
		return cfg, err
	}
	if cfg.Passphrase, err = passphraseValue(c, "passphrase-file"); err != nil {
		return cfg, err
	}
	if cfg.Registry, err = choiceValue(c, "registry", registryStatic, registryDHT, registryMemberlist, registryDNS); err != nil {
		return cfg, err
	}
	if cfg.Peers, err = hostPortListValue(c, "peers"); err != nil {
		return cfg, err
	}
	if cfg.Registry == registryDNS {
		if err = dnsFlags(c, &cfg); err != nil {
			return cfg, err
		}
	} else if cfg.Join, err = hostPortListValue(c, "join"); err != nil {
		return cfg, err
	}
	cfg.PeersFile = flagValue(c, "peers-file")
	if cfg.Registry == registryStatic {
		cfg.Peers = append(cfg.Peers, cfg.Join...)
		cfg.Join = nil
	} else {
		if len(cfg.Peers) > 0 {
			return cfg, flagErrorf("peers", "is for the static registry; with --registry %s, give --join", cfg.Registry)
		}
		if cfg.PeersFile != "" {
			return cfg, flagErrorf("peers-file", "is for the static registry; with --registry %s, give --join", cfg.Registry)
		}
	}
	if cfg.MemberlistPort, err = intValue(c, "memberlist-port", 0, 65535); err != nil {
		return cfg, err
	}
	profile, err := choiceValue(c, "memberlist-profile", string(memberlist.ProfileLAN), string(memberlist.ProfileWAN), string(memberlist.ProfileLocal))
	if err != nil {
		return cfg, err
	}
	cfg.MemberlistProfile = memberlist.Profile(profile)
	cfg.DataDir = flagValue(c, "data-dir")
	if cfg.Filter, err = choiceValue(c, "filter", node.FilterLevelDB, node.FilterMemory); err != nil {
		return cfg, err
	}
	if cfg.Filter == node.FilterLevelDB && cfg.DataDir == "" {
		return cfg, flagErrorf("data-dir", "the leveldb filter keeps its data in --data-dir; give one, or use --filter memory")
	}
	if cfg.Gossip.Fanout, err = intValue(c, "fanout", 1, 64); err != nil {
		return cfg, err
	}
	if cfg.Gossip.Interval, err = durationValue(c, "interval", time.Millisecond); err != nil {
		return cfg, err
	}
	if cfg.Gossip.MaxPark, err = longPollValue(c, "long-poll"); err != nil {
		return cfg, err
	}
	if cfg.Gossip.MaxPacketSize, err = intValue(c, "max-packet-size", wire.MinPacketSize, wire.MaxUDPPayload); err != nil {
		return cfg, err
	}
	if cfg.Gossip.MaxMessageSize, err = intValue(c, "max-message-size", 1, 1<<30); err != nil {
		return cfg, err
	}
	if cfg.Gossip.CacheRounds, err = intValue(c, "cache-rounds", 1, 100_000); err != nil {
		return cfg, err
	}
	if cfg.Gossip.Retention, err = retentionValue(c, "retention"); err != nil {
		return cfg, err
	}
	if cfg.LogMaxBytes, err = logMaxBytesValue(c, "log-max-bytes"); err != nil {
		return cfg, err
	}
	if cfg.Gossip.AEInterval, err = durationValue(c, "ae-interval", 0); err != nil {
		return cfg, err
	}
	if cfg.Gossip.AEInterval == 0 {
		cfg.Gossip.AEInterval = -1 // the core's "never"
	}
	if cfg.Handlers, err = handlerConfigValue(c); err != nil {
		return cfg, err
	}
	if cfg.LogLevel, err = logLevelValue(c, "log-level"); err != nil {
		return cfg, err
	}
	if cfg.LogFormat, err = choiceValue(c, "log-format", "text", "json"); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// dnsFlags reads --join as DNS names, --dns-interval and --dns-server.
func dnsFlags(c *cli.Context, cfg *agentConfig) error {
	for _, name := range strings.Split(c.String("join"), ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if err := dns.CheckName(name); err != nil {
			return flagErrorf("join", "%v", err)
		}
		cfg.Join = append(cfg.Join, name)
	}
	if len(cfg.Join) == 0 {
		return flagErrorf("join", "--registry dns needs names to resolve, as in --join hearsay.default.svc.cluster.local:7600")
	}
	var err error
	if cfg.DNSInterval, err = durationValue(c, "dns-interval", 100*time.Millisecond); err != nil {
		return err
	}
	if flagValue(c, "dns-server") != "" {
		if cfg.DNSServer, err = hostPortValue(c, "dns-server"); err != nil {
			return err
		}
	}
	return nil
}

// handlerConfigValue reads --handler, --handler-timeout and
// --handler-concurrency.
func handlerConfigValue(c *cli.Context) (handler.Config, error) {
	var hc handler.Config
	for _, s := range c.StringSlice("handler") {
		if strings.TrimSpace(s) == "" {
			continue // HEARSAY_HANDLER= : none
		}
		spec, err := handler.ParseSpec(s)
		if err != nil {
			return hc, flagErrorf("handler", "%v", err)
		}
		hc.Handlers = append(hc.Handlers, spec)
	}
	var err error
	if hc.Timeout, err = durationValue(c, "handler-timeout", time.Millisecond); err != nil {
		return hc, err
	}
	if hc.Concurrency, err = intValue(c, "handler-concurrency", 1, 1024); err != nil {
		return hc, err
	}
	return hc, nil
}

// nameValue checks a node name: printable, at most 128 bytes.
func nameValue(c *cli.Context, flag string) (string, error) {
	s := flagValue(c, flag)
	if len(s) > 128 {
		return "", flagErrorf(flag, "longer than 128 bytes")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }); i >= 0 {
		return "", flagErrorf(flag, "must be printable, got %q", s)
	}
	return s, nil
}

func logLevelValue(c *cli.Context, flag string) (slog.Level, error) {
	s, err := choiceValue(c, flag, "debug", "info", "warn", "error")
	if err != nil {
		return 0, err
	}
	var level slog.Level
	err = level.UnmarshalText([]byte(s))
	return level, err // the choices are all valid
}

// newLogger returns a logger of format at level, which may change while
// it runs (SIGHUP with --config).
func newLogger(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// shutdownTimeout bounds how long in-flight API requests may take to
// finish once the agent is told to stop.
const shutdownTimeout = 10 * time.Second

// agent runs an agent until ctx is cancelled (SIGINT, SIGTERM).
func (p *program) agent(ctx context.Context, cfg agentConfig) error {
	// SIGHUP's default action ends the process: catch it before anything
	// says the agent runs, so that a reload sent at once is not a kill.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	logger := newLogger(p.stderr, level, cfg.LogFormat)

	nc := node.Config{
		Name:        cfg.Name,
		DataDir:     cfg.DataDir,
		Bind:        cfg.Bind,
		Advertise:   cfg.Advertise,
		Filter:      cfg.Filter,
		Gossip:      cfg.Gossip,
		LogMaxBytes: cfg.LogMaxBytes,
		Logger:      logger,
		Cluster:     cfg.Cluster,
		Security:    security.SealerConfig{ReplayWindow: cfg.ReplayWindow, Suite: cfg.Cipher},
		Sign:        cfg.Sign,
	}
	if cfg.ValidateURL != "" {
		nc.Validator = node.HTTPValidator(cfg.ValidateURL, &http.Client{})
		nc.ValidateTimeout = cfg.ValidateTimeout
	}
	var peers *static.Registry
	switch cfg.Registry {
	case registryStatic:
		var err error
		if peers, err = newPeerRegistry(cfg); err != nil {
			return err
		}
		nc.Registry = peers
	case registryDHT:
		bootstrap, err := resolveAll(cfg.Join)
		if err != nil {
			return fmt.Errorf("--join: %w", err)
		}
		nc.DHT = &dht.Config{Bootstrap: bootstrap}
	case registryMemberlist:
		nc.Memberlist = &memberlist.Config{BindPort: cfg.MemberlistPort, Profile: cfg.MemberlistProfile}
		nc.Join = cfg.Join
	case registryDNS:
		nc.DNS = &dns.Config{Names: cfg.Join, Interval: cfg.DNSInterval, LocalAddrs: localAddrs()}
		if cfg.DNSServer != "" {
			nc.DNS.Resolver = dns.ServerResolver(cfg.DNSServer)
		}
	}
	// Listen before the node starts, so that a busy API port stops the
	// agent before it gossips.
	var apiListener net.Listener
	if cfg.API != "" {
		var err error
		if apiListener, err = node.ListenAPI(cfg.API); err != nil {
			return fmt.Errorf("--api: %w", err)
		}
		defer apiListener.Close() // after Shutdown this is a no-op
	}
	n, err := node.New(nc)
	if err != nil {
		return fieldFlagError(err)
	}
	if len(cfg.Passphrase) > 0 {
		// Installed, and primary only if the keyring kept in the data dir
		// was empty: a rotation done through the API survives a restart.
		if _, err := n.InstallPassphrase(cfg.Passphrase); err != nil {
			n.Close()
			return fmt.Errorf("--passphrase-file: %w", err)
		}
	}
	var handlers *handler.Handlers
	if len(cfg.Handlers.Handlers) > 0 {
		// Before the node starts, so that new handlers see its first
		// messages.
		hc := cfg.Handlers
		hc.Logger = logger
		if cfg.DataDir != "" {
			hc.Dir = filepath.Join(cfg.DataDir, "handlers")
		} else {
			logger.Warn("no --data-dir: handlers' progress is not kept, a restart starts them from its own first message")
		}
		if handlers, err = handler.Start(n, hc); err != nil {
			n.Close()
			return fmt.Errorf("--handler: %w", err)
		}
	}
	if !n.Encrypted() {
		logger.Warn("no passphrase: gossip is NOT encrypted or authenticated; for development only (see --passphrase-file)")
	}
	if err := n.Start(); err != nil {
		if handlers != nil {
			handlers.Close()
		}
		n.Close()
		return err
	}

	var server *http.Server
	serveErr := make(chan error, 1)
	if apiListener != nil {
		apiCfg := node.APIConfig{ProcessMetrics: true, Token: cfg.APIToken, AllowOrigins: cfg.APIOrigins}
		if cfg.APIDebug {
			apiCfg.Debug = pprofHandler()
		}
		server = newAPIServer(n, apiCfg, logger)
		server.TLSConfig = cfg.APITLS
		go func() {
			if cfg.APITLS != nil {
				serveErr <- server.ServeTLS(apiListener, "", "")
			} else {
				serveErr <- server.Serve(apiListener)
			}
		}()
	}
	apiURL := "none"
	if apiListener != nil {
		apiURL = "http://" + apiListener.Addr().String()
		if cfg.APITLS != nil {
			apiURL = "https://" + apiListener.Addr().String()
		}
		if strings.HasPrefix(cfg.API, "unix:") {
			apiURL = cfg.API
		}
	}
	logger.Info("hearsay agent running", "name", n.Name(), "id", n.ID().String(),
		"gossip_addr", n.Addr().String(), "advertise", n.AdvertiseAddr(), "api", apiURL,
		"registry", cfg.Registry, "peers", len(n.Peers()), "encrypted", n.Encrypted(), "version", node.Version)

	live := &liveAgent{cfg: cfg, node: n, peers: peers, level: level, logger: logger}

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			logger.Info("stopping")
			break loop
		case <-hup:
			p.reload(ctx, live)
		case err := <-serveErr:
			runErr = fmt.Errorf("API server: %w", err)
			break loop
		}
	}

	if server != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if err := server.Shutdown(shutdownCtx); err != nil {
			logger.Warn("API requests still running at shutdown, closing them", "err", err)
			server.Close()
		}
		cancel()
	}
	if handlers != nil {
		if err := handlers.Close(); err != nil && runErr == nil {
			runErr = err
		}
	}
	if err := n.Close(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// fieldFlagError names the flag of the node's Config field that an error
// is about (a busy --bind port, a --data-dir that cannot be used).
func fieldFlagError(err error) error {
	var fe *node.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	flag := map[string]string{"DataDir": "data-dir", "Bind": "bind"}[fe.Field]
	if flag == "" {
		return err
	}
	return fmt.Errorf("--%s: %s", flag, fe.Reason())
}

// newAPIServer returns the HTTP server of a node's API, with the library's
// limits, logging its errors to logger. Its Shutdown ends the open event
// streams with the "node shutting down" event.
func newAPIServer(n *node.Node, cfg node.APIConfig, logger *slog.Logger) *http.Server {
	server := node.NewAPIServer(node.NewAPI(n, cfg), node.APIServerConfig{})
	server.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	return server
}

// resolveAll resolves host:port entries to UDP addresses.
func resolveAll(entries []string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, e := range entries {
		ua, err := net.ResolveUDPAddr("udp", e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e, err)
		}
		ap := ua.AddrPort()
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	return out, nil
}

// newPeerRegistry builds the static registry of --peers, --join and
// --peers-file, leaving this agent's own address out of it.
func newPeerRegistry(cfg agentConfig) (*static.Registry, error) {
	sc := static.Config{Peers: cfg.Peers, File: cfg.PeersFile, Self: selfHint(cfg)}
	reg, err := static.New(sc)
	if err != nil {
		return nil, peerRegistryError(err)
	}
	if sc.Self.IsValid() && !sc.Self.Addr().IsUnspecified() {
		return reg, nil
	}
	// Bound to every interface and not told its address: find this agent
	// in the list by its port and one of this host's addresses.
	port := sc.Self.Port()
	self, ok := findSelf(reg.Peers(), port, localAddrs())
	if !ok {
		return reg, nil
	}
	sc.Self = self
	if reg, err = static.New(sc); err != nil {
		return nil, peerRegistryError(err)
	}
	return reg, nil
}

func peerRegistryError(err error) error {
	var entryErr *static.EntryError
	switch {
	case errors.As(err, &entryErr) && entryErr.File != "":
		return fmt.Errorf("--peers-file: %w", err)
	case errors.As(err, &entryErr):
		return fmt.Errorf("--peers/--join: %w", err)
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission):
		return fmt.Errorf("--peers-file: %w", err)
	}
	return err
}

// selfHint is the address other agents list for this one, as far as the
// flags tell: --advertise, else --bind, resolved. It may be unspecified
// (0.0.0.0:7600) or invalid.
func selfHint(cfg agentConfig) netip.AddrPort {
	for _, hostport := range []string{cfg.Advertise, cfg.Bind} {
		if hostport == "" {
			continue
		}
		if strings.HasPrefix(hostport, ":") {
			hostport = "0.0.0.0" + hostport
		}
		if ap, err := netip.ParseAddrPort(hostport); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
		if ua, err := net.ResolveUDPAddr("udp", hostport); err == nil {
			ap := ua.AddrPort()
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	return netip.AddrPort{}
}

// findSelf returns the first peer on port whose address is one of local.
func findSelf(peers []netip.AddrPort, port uint16, local []netip.Addr) (netip.AddrPort, bool) {
	for _, p := range peers {
		if p.Port() != port {
			continue
		}
		for _, a := range local {
			if p.Addr() == a {
				return p, true
			}
		}
	}
	return netip.AddrPort{}, false
}

// localAddrs lists this host's interface addresses.
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipnet.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// retentionValue parses --retention: a Go duration or a number of days
// (2d), from 1s to gossip.MaxRetention. MaxAge follows it.
func retentionValue(c *cli.Context, name string) (time.Duration, error) {
	s := flagValue(c, name)
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 7 {
			return 0, flagErrorf(name, "want a duration such as 10m, 12h or 2d (at most 7d), got %q", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = durationValue(c, name, 0); err != nil {
			return 0, err
		}
	}
	switch {
	case d < time.Second:
		return 0, flagErrorf(name, "must be at least 1s, got %s", d)
	case d > gossip.MaxRetention:
		return 0, flagErrorf(name, "at most 7d (168h), got %s", durationText(d))
	}
	return d, nil
}

// minLogMaxBytes is the least --log-max-bytes: room for a few hundred
// messages, so that anti-entropy has something to compare.
const minLogMaxBytes = 64 << 10

// logMaxBytesValue parses --log-max-bytes.
func logMaxBytesValue(c *cli.Context, name string) (int64, error) {
	s := flagValue(c, name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, flagErrorf(name, "want a whole number of bytes, such as 1073741824, got %q", s)
	}
	if n < minLogMaxBytes {
		return 0, flagErrorf(name, "must be at least %d, got %d", minLogMaxBytes, n)
	}
	return n, nil
}
