package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/hearsay-io/hearsay/registry/memberlist"
	"github.com/hearsay-io/hearsay/security"
)

// Memberlist returns the node's memberlist registry once started, or nil.
func (n *Node) Memberlist() *memberlist.Registry {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ml
}

// startMemberlist starts memberlist and its background join; under n.mu.
func (n *Node) startMemberlist() error {
	c := *n.cfg.Memberlist
	if c.Name == "" {
		c.Name = n.name
	}
	if self, ok := n.selfAddr(); ok {
		c.GossipAddr = self
	} else {
		c.GossipAddr = n.Addr() // unspecified IP: memberlist's advertised IP stands for it
	}
	if c.BindAddr == "" {
		c.BindAddr = n.Addr().Addr().String()
	}
	switch {
	case c.BindPort == 0:
		c.BindPort = int(n.Addr().Port()) + 2
	case c.BindPort < 0:
		c.BindPort = 0 // any free port
	}
	if c.Label == "" {
		c.Label = n.cfg.Cluster
	}
	if c.Logger == nil {
		c.Logger = n.logger.With("component", "memberlist")
	}
	if keys := n.cfg.Keyring.Keys(); len(keys) > 0 && c.SecretKey == nil {
		c.SecretKey = memberlist.DeriveSecretKey(keys[0])
		for _, k := range keys[1:] {
			c.ExtraKeys = append(c.ExtraKeys, memberlist.DeriveSecretKey(k))
		}
	}
	reg, err := memberlist.New(c)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.ml = reg
	n.peers.setRegistry(reg)
	n.logger.Info("memberlist running", "addr", reg.Addr().String(), "encrypted", c.SecretKey != nil)
	if len(n.cfg.Join) > 0 {
		n.wg.Add(1)
		go n.joinLoop(reg)
	}
	return nil
}

// joinLoop joins the memberlist addresses of Config.Join, retrying with
// backoff until one answers: the seed may start after us.
func (n *Node) joinLoop(reg *memberlist.Registry) {
	defer n.wg.Done()
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		joined, err := reg.Join(n.cfg.Join)
		if joined > 0 {
			n.logger.Info("joined the cluster", "through", joined, "peers", len(reg.Peers()))
			return
		}
		if errors.Is(err, memberlist.ErrShutdown) {
			return
		}
		if attempt == 1 || attempt%10 == 0 {
			n.logger.Warn("could not join yet, retrying", "join", n.cfg.Join, "err", err, "attempt", attempt)
		}
		select {
		case <-n.done:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// stopMemberlist leaves the cluster (so that the others drop this node at
// once rather than after failure detection) and stops memberlist.
func (n *Node) stopMemberlist() error {
	if err := n.ml.Leave(5 * time.Second); err != nil {
		n.logger.Warn("memberlist leave", "err", err)
	}
	if err := n.ml.Shutdown(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

// memberlistKeys applies a keyring change to memberlist's keyring, whose
// keys are derived from the cluster's.
func (n *Node) memberlistKeys(op string, k security.Key) {
	reg := n.Memberlist()
	if reg == nil {
		return
	}
	mk := memberlist.DeriveSecretKey(k)
	var err error
	switch op {
	case "install":
		err = reg.AddKey(mk)
	case "use":
		err = reg.UseKey(mk)
	case "remove":
		err = reg.RemoveKey(mk)
	}
	if errors.Is(err, memberlist.ErrNotEncrypted) {
		n.logger.Warn("memberlist started without a key and stays unencrypted until a restart", "key_op", op)
	} else if err != nil {
		n.logger.Warn("memberlist key not updated", "key_op", op, "err", err)
	}
}
