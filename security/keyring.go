package security

import (
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// Keyring errors.
var (
	ErrUnknownKey    = errors.New("security: no such key in the keyring")
	ErrRemovePrimary = errors.New("security: cannot remove the primary key; use another key first")
	ErrKeyIDClash    = errors.New("security: a different key with the same ID is installed")
)

// Keyring holds the keys a node accepts. The primary key seals; every
// installed key opens. That is what lets a cluster rotate without downtime:
// install the new key everywhere, then make it primary everywhere, then
// remove the old one. A Keyring is safe for concurrent use.
type Keyring struct {
	mu      sync.RWMutex
	keys    map[KeyID]*ringKey
	primary KeyID
	path    string // where changes are saved; empty: not saved
}

type ringKey struct {
	key  Key
	aead cipher.AEAD // XChaCha20Poly1305's
	xaes *xaesRoot   // AES256GCM's root, derived from per sender
}

// KeyInfo describes an installed key.
type KeyInfo struct {
	ID      string `json:"id"`
	Primary bool   `json:"primary"`
}

// NewKeyring returns a keyring holding keys; the first is primary. With no
// keys it is empty, and a node with an empty keyring runs unencrypted.
func NewKeyring(keys ...Key) (*Keyring, error) {
	r := &Keyring{keys: map[KeyID]*ringKey{}}
	for i, k := range keys {
		if err := r.install(k); err != nil {
			return nil, err
		}
		if i == 0 {
			r.primary = k.ID()
		}
	}
	return r, nil
}

func (r *Keyring) install(k Key) error {
	id := k.ID()
	if old, ok := r.keys[id]; ok {
		if old.key != k {
			return ErrKeyIDClash
		}
		return nil
	}
	aead, err := chacha20poly1305.NewX(k[:])
	if err != nil {
		return fmt.Errorf("security: %w", err)
	}
	root, err := newXAESRoot(k)
	if err != nil {
		return err
	}
	r.keys[id] = &ringKey{key: k, aead: aead, xaes: root}
	return nil
}

// Enabled reports whether the keyring holds any key.
func (r *Keyring) Enabled() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.keys) > 0
}

// Install adds a key (it does not become primary unless the ring was empty)
// and returns its ID.
func (r *Keyring) Install(k Key) (KeyID, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.install(k); err != nil {
		return 0, err
	}
	if len(r.keys) == 1 {
		r.primary = k.ID()
	}
	return k.ID(), r.saveLocked()
}

// Use makes the key with this ID the primary.
func (r *Keyring) Use(id KeyID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.keys[id]; !ok {
		return fmt.Errorf("%w: %v", ErrUnknownKey, id)
	}
	r.primary = id
	return r.saveLocked()
}

// Remove removes a key that is not the primary.
func (r *Keyring) Remove(id KeyID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.keys[id]; !ok {
		return fmt.Errorf("%w: %v", ErrUnknownKey, id)
	}
	if id == r.primary {
		return ErrRemovePrimary
	}
	delete(r.keys, id)
	return r.saveLocked()
}

// List returns the installed keys, primary first, then by ID.
func (r *Keyring) List() []KeyInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]KeyInfo, 0, len(r.keys))
	for id := range r.keys {
		out = append(out, KeyInfo{ID: id.String(), Primary: id == r.primary})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Primary != out[j].Primary {
			return out[i].Primary
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Keys returns the installed keys' material, primary first, then by ID, for
// deriving the keys of other layers (memberlist's) from the cluster's.
func (r *Keyring) Keys() []Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]KeyID, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if (ids[i] == r.primary) != (ids[j] == r.primary) {
			return ids[i] == r.primary
		}
		return ids[i].String() < ids[j].String()
	})
	out := make([]Key, len(ids))
	for i, id := range ids {
		out[i] = r.keys[id].key
	}
	return out
}

// Key returns the material of the installed key id.
func (r *Keyring) Key(id KeyID) (Key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[id]
	if !ok {
		return Key{}, false
	}
	return k.key, true
}

// primaryKey returns the sealing key.
func (r *Keyring) primaryKey() (KeyID, *ringKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[r.primary]
	return r.primary, k, ok
}

func (r *Keyring) lookup(id KeyID) (*ringKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[id]
	return k, ok
}

// keyringFile is the keyring's on-disk form. The keys are secrets: the file
// is written with mode 0600.
type keyringFile struct {
	Primary string   `json:"primary"`
	Keys    []string `json:"keys"` // hex
}

// OpenKeyringFile loads the keyring kept at path, or returns an empty one if
// the file does not exist. Later changes are saved there.
func OpenKeyringFile(path string) (*Keyring, error) {
	r := &Keyring{keys: map[KeyID]*ringKey{}, path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("security: reading keyring: %w", err)
	}
	var f keyringFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("security: keyring %s is corrupt: %w", path, err)
	}
	for _, s := range f.Keys {
		raw, err := hex.DecodeString(s)
		if err != nil || len(raw) != KeySize {
			return nil, fmt.Errorf("security: keyring %s is corrupt: bad key", path)
		}
		if err := r.install(Key(raw)); err != nil {
			return nil, fmt.Errorf("security: keyring %s: %w", path, err)
		}
	}
	if len(r.keys) > 0 {
		id, err := ParseKeyID(f.Primary)
		if err != nil {
			return nil, fmt.Errorf("security: keyring %s is corrupt: %w", path, err)
		}
		if _, ok := r.keys[id]; !ok {
			return nil, fmt.Errorf("security: keyring %s is corrupt: primary %v is not installed", path, id)
		}
		r.primary = id
	}
	return r, nil
}

// Save writes the keyring to its file now (OpenKeyringFile's path).
func (r *Keyring) Save() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.saveLocked()
}

func (r *Keyring) saveLocked() error {
	if r.path == "" {
		return nil
	}
	f := keyringFile{Primary: r.primary.String()}
	ids := make([]KeyID, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		k := r.keys[id].key
		f.Keys = append(f.Keys, hex.EncodeToString(k[:]))
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("security: saving keyring: %w", err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("security: saving keyring: %w", err)
	}
	return nil
}
