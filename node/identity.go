package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hearsay-io/hearsay/gossip"
)

// identityFile holds a node's ID and name in its data directory, so that a
// restarted node is the same origin and keeps its name.
const identityFile = "node.json"

type identity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// loadIdentity reads the identity in dir, creating it with newID when
// absent. name, if not empty, replaces the stored name. With dir empty
// nothing is stored.
func loadIdentity(dir, name string, newID func() gossip.NodeID) (gossip.NodeID, string, error) {
	var id gossip.NodeID
	if dir == "" {
		id = newID()
		if name == "" {
			name = defaultName()
		}
		return id, name, nil
	}
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		id = newID()
		if name == "" {
			name = defaultName()
		}
	case err != nil:
		return id, "", fmt.Errorf("node: reading %s: %w", path, err)
	default:
		var stored identity
		if err := json.Unmarshal(b, &stored); err != nil {
			return id, "", fmt.Errorf("node: %s is corrupt (%w); move it away to start as a new node", path, err)
		}
		if id, err = gossip.ParseNodeID(stored.ID); err != nil || id.IsZero() {
			return id, "", fmt.Errorf("node: %s is corrupt: bad id %q; move it away to start as a new node", path, stored.ID)
		}
		if name == "" {
			name = stored.Name
		}
		if name == stored.Name {
			return id, name, nil
		}
	}
	if err := writeIdentity(path, identity{ID: id.String(), Name: name}); err != nil {
		return id, "", err
	}
	return id, name, nil
}

func writeIdentity(path string, ident identity) error {
	b, _ := json.MarshalIndent(ident, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("node: writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("node: writing %s: %w", path, err)
	}
	return nil
}

func defaultName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "hearsay"
	}
	var suffix [2]byte
	_, _ = rand.Read(suffix[:])
	return host + "-" + hex.EncodeToString(suffix[:])
}
