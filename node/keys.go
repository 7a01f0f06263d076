package node

import (
	"fmt"
	"sync"

	"github.com/hearsay-io/hearsay/security"
)

// kdfMu serialises key derivations: each takes 64 MiB and a fraction of a
// second, and there is no reason to run several at once.
var kdfMu sync.Mutex

// InstallPassphrase derives the key of passphrase for this node's cluster
// and installs it in the keyring (accepted, not yet used to seal, unless
// the keyring was empty: then the node starts encrypting at once). It
// returns the key's ID.
func (n *Node) InstallPassphrase(passphrase []byte) (security.KeyID, error) {
	kdfMu.Lock()
	key, err := security.DeriveKey(passphrase, n.cfg.Cluster, n.cfg.KDF)
	kdfMu.Unlock()
	if err != nil {
		return 0, err
	}
	wasEnabled := n.cfg.Keyring.Enabled()
	id, err := n.cfg.Keyring.Install(key)
	if err != nil {
		return 0, err
	}
	n.memberlistKeys("install", key)
	if !wasEnabled {
		n.logger.Warn("first key installed: this node now encrypts, and drops unencrypted datagrams", "key", id.String())
	} else {
		n.logger.Info("key installed", "key", id.String())
	}
	return id, nil
}

// UseKey makes an installed key the one that seals.
func (n *Node) UseKey(id security.KeyID) error {
	if err := n.cfg.Keyring.Use(id); err != nil {
		return err
	}
	if k, ok := n.cfg.Keyring.Key(id); ok {
		n.memberlistKeys("use", k)
	}
	n.logger.Info("sealing with key", "key", id.String())
	return nil
}

// RemoveKey removes an installed key that is not the primary.
func (n *Node) RemoveKey(id security.KeyID) error {
	k, known := n.cfg.Keyring.Key(id)
	if err := n.cfg.Keyring.Remove(id); err != nil {
		return err
	}
	if known {
		n.memberlistKeys("remove", k)
	}
	n.logger.Info("key removed", "key", id.String())
	return nil
}

// Keys lists the installed keys, primary first.
func (n *Node) Keys() []security.KeyInfo { return n.cfg.Keyring.List() }

// Encrypted reports whether the node seals its datagrams.
func (n *Node) Encrypted() bool { return n.cfg.Keyring.Enabled() }

func keyIDFromPath(s string) (security.KeyID, error) {
	id, err := security.ParseKeyID(s)
	if err != nil {
		return 0, fmt.Errorf("bad key ID in path: %w", err)
	}
	return id, nil
}
