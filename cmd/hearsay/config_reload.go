package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"

	"github.com/hearsay-io/hearsay/node"
	"github.com/hearsay-io/hearsay/registry/static"
)

// liveAgent is what SIGHUP may change in a running agent.
type liveAgent struct {
	cfg    agentConfig
	node   *node.Node
	peers  *static.Registry // nil unless --registry static
	level  *slog.LevelVar
	logger *slog.Logger
}

// liveKeys are the settings SIGHUP applies without a restart: the log
// level, and the static registry's peers. Every other change is logged as
// needing a restart.
var liveKeys = []string{"log-level", "peers", "peers-file", "join"}

// reload is the agent's SIGHUP: without --config it re-reads --peers-file;
// with one it reads the command line, the environment and the file again,
// applies what can change live, and logs what changed and which of the
// changes need a restart. A file that no longer reads keeps everything as
// it was.
func (p *program) reload(ctx context.Context, a *liveAgent) {
	if a.cfg.ConfigFile == "" {
		a.reloadPeersFile()
		return
	}
	next, err := p.readAgentConfig(ctx)
	if err != nil {
		a.logger.Warn("SIGHUP: configuration not reloaded, keeping the current one", "file", a.cfg.ConfigFile, "err", err)
		return
	}
	var changed, applied, restart []string
	for key, v := range next.Settings {
		if !reflect.DeepEqual(v, a.cfg.Settings[key]) {
			changed = append(changed, key)
		}
	}
	slices.Sort(changed)
	peersChanged := false
	for _, key := range changed {
		switch {
		case key == "log-level":
			a.level.Set(next.LogLevel)
			applied = append(applied, key)
		case slices.Contains(liveKeys, key) && a.peers != nil && next.Registry == registryStatic:
			peersChanged = true
			applied = append(applied, key)
		default:
			restart = append(restart, key)
		}
	}
	if peersChanged {
		reg, err := newPeerRegistry(next)
		if err == nil {
			err = a.node.SetRegistry(reg)
		}
		if err != nil {
			a.logger.Warn("SIGHUP: configuration not reloaded, keeping the current one", "file", a.cfg.ConfigFile, "err", err)
			return
		}
		a.peers = reg
	} else if a.peers != nil {
		a.reloadPeersFile() // SIGHUP re-reads --peers-file, with or without --config
	}
	// What needs a restart keeps its running value, so that the next
	// SIGHUP reports it again until the agent restarts.
	for _, key := range restart {
		next.Settings[key] = a.cfg.Settings[key]
	}
	a.cfg.Settings, a.cfg.LogLevel = next.Settings, next.LogLevel
	if peersChanged {
		a.cfg.Peers, a.cfg.PeersFile, a.cfg.Join = next.Peers, next.PeersFile, next.Join
	}
	a.logger.Info("SIGHUP: configuration reloaded", "file", a.cfg.ConfigFile, "changed", changed,
		"applied", applied, "need_restart", restart, "peers", len(a.node.Peers()))
	if len(restart) > 0 {
		a.logger.Warn("SIGHUP: some changes take effect only after a restart", "need_restart", restart)
	}
}

// reloadPeersFile re-reads --peers-file, as SIGHUP always did.
func (a *liveAgent) reloadPeersFile() {
	if a.peers == nil {
		a.logger.Info("SIGHUP: nothing to reload with --registry " + a.cfg.Registry)
	} else if err := a.peers.Reload(); err != nil {
		a.logger.Warn("SIGHUP: peers not reloaded, keeping the current ones", "err", err)
	} else {
		a.logger.Info("SIGHUP: peers reloaded", "peers", a.peers.Len())
	}
}

// readAgentConfig parses the agent's command line again, with the
// environment and the config file as they are now, without running
// anything.
func (p *program) readAgentConfig(ctx context.Context) (agentConfig, error) {
	var got *agentConfig
	q := &program{stdin: p.stdin, stdout: io.Discard, stderr: io.Discard, args: p.args}
	q.runAgent = func(_ context.Context, cfg agentConfig) error {
		got = &cfg
		return nil
	}
	app := q.newApp()
	if err := app.RunContext(ctx, p.args); err != nil {
		return agentConfig{}, err
	}
	if got == nil {
		return agentConfig{}, fmt.Errorf("the command line no longer runs an agent")
	}
	return *got, nil
}
