package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hearsay-io/hearsay/gossip"
)

// A node's identity is an Ed25519 key pair and a name, kept in its data
// directory so that a restarted node is the same origin and keeps its name.
// Its ID is derived from the public key (gossip.NodeIDOf), so an ID cannot
// be claimed without the key.
const (
	identityFile = "node.json" // ID (for people and older versions) and name
	keyFile      = "node.key"  // the private key, PKCS #8 in PEM, mode 0600
)

type identityJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type identity struct {
	ID   gossip.NodeID
	Key  ed25519.PrivateKey
	Name string
	// Replaced is the ID a data dir of a version before signing keys held,
	// now replaced by the key's; zero otherwise.
	Replaced gossip.NodeID
}

// loadIdentity reads the identity in dir, creating its key with newKey when
// absent. name, if not empty, replaces the stored name. With dir empty
// nothing is stored and every start has a new key.
func loadIdentity(dir, name string, newKey func() (ed25519.PrivateKey, error)) (identity, error) {
	if dir == "" {
		key, err := newKey()
		if err != nil {
			return identity{}, err
		}
		if name == "" {
			name = defaultName()
		}
		return identity{ID: gossip.NodeIDOf(key.Public().(ed25519.PublicKey)), Key: key, Name: name}, nil
	}
	keyPath, idPath := filepath.Join(dir, keyFile), filepath.Join(dir, identityFile)
	key, err := readKey(keyPath)
	created := errors.Is(err, fs.ErrNotExist)
	switch {
	case created:
		if key, err = newKey(); err != nil {
			return identity{}, err
		}
	case err != nil:
		return identity{}, err
	}
	id := identity{ID: gossip.NodeIDOf(key.Public().(ed25519.PublicKey)), Key: key, Name: name}
	stored, err := readIdentityJSON(idPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return identity{}, err
	}
	if id.Name == "" {
		id.Name = stored.Name
	}
	if id.Name == "" {
		id.Name = defaultName()
	}
	if created {
		if old, err := gossip.ParseNodeID(stored.ID); err == nil && old != id.ID {
			id.Replaced = old
		}
		if err := writeKey(keyPath, key); err != nil {
			return identity{}, err
		}
	}
	if stored.ID != id.ID.String() || stored.Name != id.Name {
		if err := writeFileAtomic(idPath, identityJSONBytes(id)); err != nil {
			return identity{}, err
		}
	}
	return id, nil
}

func readKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("node: reading %s: %w", path, err)
	}
	corrupt := func(why string) error {
		return fmt.Errorf("node: %s is corrupt (%s); move it away to start as a new node, with a new ID", path, why)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, corrupt("not a PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, corrupt(err.Error())
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, corrupt(fmt.Sprintf("a %T, not an Ed25519 key", k))
	}
	return key, nil
}

func writeKey(path string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("node: encoding the node key: %w", err)
	}
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func readIdentityJSON(path string) (identityJSON, error) {
	var stored identityJSON
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return stored, err
		}
		return stored, fmt.Errorf("node: reading %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &stored); err != nil {
		return stored, fmt.Errorf("node: %s is corrupt (%w); move it away to start as a new node", path, err)
	}
	return stored, nil
}

func identityJSONBytes(id identity) []byte {
	b, _ := json.MarshalIndent(identityJSON{ID: id.ID.String(), Name: id.Name}, "", "  ")
	return append(b, '\n')
}

// writeFileAtomic replaces path with b, mode 0600, through a temporary file
// so that a crash leaves the old or the new content.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
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
