package client

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
)

// Status is an agent's GET /v1/status (docs/api.md).
type Status struct {
	Name              string  `json:"name"`
	ID                string  `json:"id"`
	PublicKey         string  `json:"public_key"` // standard base64 of the Ed25519 key the ID derives from
	Version           string  `json:"version"`
	GossipAddr        string  `json:"gossip_addr"` // the address peers use: --advertise, else the bound one
	BindAddr          string  `json:"bind_addr"`
	Peers             int     `json:"peers"`
	Filter            string  `json:"filter"` // "leveldb" or "memory"
	FilterIDs         int     `json:"filter_ids"`
	MessagesPublished uint64  `json:"messages_published"`
	MessagesDelivered uint64  `json:"messages_delivered"` // each once, published here or received
	Duplicates        uint64  `json:"duplicates"`
	CacheMessages     int     `json:"cache_messages"`
	CacheBytes        int     `json:"cache_bytes"`
	CacheMaxMessages  int     `json:"cache_max_messages"` // the propagation cache's bounds
	CacheMaxBytes     int     `json:"cache_max_bytes"`
	Subscribers       int     `json:"subscribers"`
	Rounds            uint64  `json:"rounds"`
	Fanout            int     `json:"fanout"`
	Interval          string  `json:"interval"` // a Go duration, as "200ms"
	MaxPacketSize     int     `json:"max_packet_size"`
	Encrypted         bool    `json:"encrypted"`
	Cipher            string  `json:"cipher"`
	Keys              int     `json:"keys"`
	MerkleRoot        string  `json:"merkle_root"`
	LogMessages       int     `json:"log_messages"`
	LogBytes          int64   `json:"log_bytes"`
	LogMaxBytes       int64   `json:"log_max_bytes"` // the message log's bound; 0: unknown (a log an embedding program gave)
	UptimeSeconds     float64 `json:"uptime_seconds"`
}

// Peers is an agent's GET /v1/peers: its registry and peers.
type Peers struct {
	// Registry is "static", "dht", "memberlist" or "custom".
	Registry string `json:"registry"`
	// Peers are the registry's peers, host:port gossip addresses.
	Peers []string `json:"peers"`
	// Suspects are peers skipped for gossip because they stopped answering.
	Suspects []string `json:"suspects"`
	// Penalised are the peers charged with offences: messages they relayed
	// that failed their origin's signature or the validator (--sign,
	// --validate-url).
	Penalised []Penalty `json:"penalised,omitempty"`
	// Buckets is the DHT's bucket fill (dht only).
	Buckets []Bucket `json:"buckets,omitempty"`
	// Contacts are the DHT's contacts (dht only).
	Contacts []Contact `json:"contacts,omitempty"`
	// Members are memberlist's members, the agent included (memberlist only).
	Members []Member `json:"members,omitempty"`
}

// Penalty is a peer charged with offences.
type Penalty struct {
	Addr     string  `json:"addr"`
	Score    float64 `json:"score"`    // offences, halving every 50 rounds; at 8 the peer is banned
	Offences uint64  `json:"offences"` // since it was first charged
	// BannedFor is how much longer the agent does not pull from it, as a
	// Go duration; empty: not banned, only pulled from less.
	BannedFor string `json:"banned_for,omitempty"`
}

// Bucket is one k-bucket of a DHT registry.
type Bucket struct {
	Index        int `json:"index"`
	Contacts     int `json:"contacts"`
	Answering    int `json:"answering"`
	Replacements int `json:"replacements"`
}

// Contact is one contact of a DHT registry.
type Contact struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Bucket    int    `json:"bucket"` // -1: only in the sample pool
	InPool    bool   `json:"in_pool"`
	LastSeen  string `json:"last_seen,omitempty"` // RFC 3339
	Fails     int    `json:"fails"`
	Answering bool   `json:"answering"`
}

// Member is one member of a memberlist registry.
type Member struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"` // memberlist's address
	GossipAddr string `json:"gossip_addr"`
	State      string `json:"state"` // "alive" or "gone"
	Self       bool   `json:"self,omitempty"`
}

// Keyring is the answer of the /v1/keys endpoints.
type Keyring struct {
	// Encrypted reports whether the agent seals its datagrams.
	Encrypted bool `json:"encrypted"`
	// Keys are the installed keys; the primary seals, all open.
	Keys []Key `json:"keys"`
}

// Key is one installed cluster key: its ID, never its material.
type Key struct {
	ID      string `json:"id"` // 8 hex digits
	Primary bool   `json:"primary"`
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.call(ctx, http.MethodGet, "/v1/status", nil, http.StatusOK, &s)
	return s, err
}

// Peers returns the agent's registry and peers.
func (c *Client) Peers(ctx context.Context) (Peers, error) {
	var p Peers
	err := c.call(ctx, http.MethodGet, "/v1/peers", nil, http.StatusOK, &p)
	return p, err
}

// Keys lists the agent's cluster keys.
func (c *Client) Keys(ctx context.Context) (Keyring, error) {
	var k Keyring
	err := c.call(ctx, http.MethodGet, "/v1/keys", nil, http.StatusOK, &k)
	return k, err
}

// InstallKey derives the key of passphrase for the agent's cluster and
// installs it, returning its ID. It seals only once UseKey makes it primary,
// unless it is the first key.
func (c *Client) InstallKey(ctx context.Context, passphrase []byte) (string, error) {
	var answer struct {
		ID string `json:"id"`
	}
	err := c.call(ctx, http.MethodPost, "/v1/keys", bytes.NewReader(passphrase), http.StatusCreated, &answer)
	return answer.ID, err
}

// UseKey makes the installed key id the primary, the one that seals.
func (c *Client) UseKey(ctx context.Context, id string) (Keyring, error) {
	var k Keyring
	err := c.call(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(id)+"/use", nil, http.StatusOK, &k)
	return k, err
}

// RemoveKey removes the installed key id; the primary cannot be removed
// (409).
func (c *Client) RemoveKey(ctx context.Context, id string) (Keyring, error) {
	var k Keyring
	err := c.call(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(id), nil, http.StatusOK, &k)
	return k, err
}

// Health returns nil if the agent answers GET /healthz with 200: it runs.
// It needs no token.
func (c *Client) Health(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/healthz", nil, http.StatusOK, nil)
}

// Ready returns nil if the agent answers GET /readyz with 200: it is ready
// to serve (agents that have that endpoint; see docs/api.md). A not ready
// agent's answer is an *APIError carrying its reason.
func (c *Client) Ready(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/readyz", nil, http.StatusOK, nil)
}
