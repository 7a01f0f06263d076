package node

import (
	"encoding/base64"
	"maps"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/security"
	"github.com/hearsay-io/hearsay/transport"
)

// Stats is a snapshot of a node's counters.
type Stats struct {
	Gossip gossip.Stats
	// Trust are the core's counters of signatures (Config.Sign) and validation (Config.Validator).
	Trust gossip.TrustStats
	// Rejected and Ignored count the messages the validator rejected or
	// ignored, received (Trust's) and published here; ValidatorErrors
	// the calls that gave no verdict.
	Rejected, Ignored, ValidatorErrors uint64
	// UDP are the transport's counters: the UDP socket's, or the in-memory
	// endpoint's.
	UDP         transport.Stats
	Subscribers int
	FilterIDs   int
	Refused     [numRefusals]uint64 // publishes refused, indexed like RefusalReasons
	SendErrors  uint64
	// Drops counts datagrams dropped outside the core, by reason: security
	// (plaintext, sealed, truncated, wrong_cipher, unknown_key, auth_failed, stale,
	// replay) and send limits (amplification, peer_round_cap).
	Drops map[string]uint64
	Peers PeerStats
}

// PeerStats counts peer hygiene.
type PeerStats struct {
	Suspects     int    // peers skipped now
	Suspected    uint64 // times a peer became a suspect
	Recovered    uint64 // times a suspect was heard from again
	PullsSkipped uint64 // pulls not sent to a suspect
	AcksSent     uint64 // PULL_ACKs sent
}

// Stats returns the core's counters, the transport's, and the number of
// subscribers.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	trust := n.core.TrustStats()
	return Stats{Gossip: n.core.Stats(), Trust: trust, Rejected: trust.Rejected + n.validation.local[0],
		Ignored: trust.Ignored + n.validation.local[1], ValidatorErrors: n.validation.errors, UDP: n.transport.Stats(), Subscribers: len(n.subs),
		FilterIDs: n.filter.Len(), Refused: n.refused, SendErrors: n.sendErr, Drops: maps.Clone(n.drops),
		Peers: PeerStats{Suspects: len(n.peers.suspects()), Suspected: n.peers.suspected,
			Recovered: n.peers.recovered, PullsSkipped: n.peers.skipped, AcksSent: n.acks}}
}

func (n *Node) merkleRoot() ([32]byte, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	root, count := n.core.MerkleRoot()
	return root, count
}

func (n *Node) countRefusal(reason int) {
	n.mu.Lock()
	n.refused[reason]++
	n.mu.Unlock()
}

// Why a publish was refused; the labels of hearsay_messages_refused_total.
const (
	refusedBackpressure = iota
	refusedTooLarge
	refusedInvalidTopic
	refusedError
	numRefusals
)

// RefusalReasons names the entries of Stats.Refused.
var RefusalReasons = [numRefusals]string{"backpressure", "too_large", "invalid_topic", "error"}

// Status is a node's state as GET /v1/status shows it.
type Status struct {
	Name              string  `json:"name"`
	ID                string  `json:"id"`
	PublicKey         string  `json:"public_key"` // standard base64 of the Ed25519 key the ID derives from
	Version           string  `json:"version"`
	GossipAddr        string  `json:"gossip_addr"`
	BindAddr          string  `json:"bind_addr"`
	Peers             int     `json:"peers"`
	Filter            string  `json:"filter"`
	FilterIDs         int     `json:"filter_ids"`
	MessagesPublished uint64  `json:"messages_published"`
	MessagesDelivered uint64  `json:"messages_delivered"`
	Duplicates        uint64  `json:"duplicates"`
	CacheMessages     int     `json:"cache_messages"`
	CacheBytes        int     `json:"cache_bytes"`
	CacheMaxMessages  int     `json:"cache_max_messages"`
	CacheMaxBytes     int     `json:"cache_max_bytes"`
	Subscribers       int     `json:"subscribers"`
	Rounds            uint64  `json:"rounds"`
	Fanout            int     `json:"fanout"`
	Interval          string  `json:"interval"`
	MaxPacketSize     int     `json:"max_packet_size"`
	Encrypted         bool    `json:"encrypted"`
	Cipher            string  `json:"cipher"` // the suite sealing datagrams (--cipher); empty when not encrypted
	Keys              int     `json:"keys"`
	MerkleRoot        string  `json:"merkle_root"`
	LogMessages       int     `json:"log_messages"`
	LogBytes          int64   `json:"log_bytes"`
	LogMaxBytes       int64   `json:"log_max_bytes"` // 0: a log the embedding program gave, bound unknown
	UptimeSeconds     float64 `json:"uptime_seconds"`
}

// Status returns the node's status.
func (n *Node) Status() Status {
	st := n.Stats()
	gc := n.core.Config()
	s := Status{
		Name: n.name, ID: n.id.String(), PublicKey: base64.StdEncoding.EncodeToString(n.PublicKey()), Version: Version,
		GossipAddr: n.AdvertiseAddr(), BindAddr: n.Addr().String(),
		Peers: len(n.Peers()), Filter: n.cfg.Filter, FilterIDs: st.FilterIDs,
		MessagesPublished: st.Gossip.Published, MessagesDelivered: st.Gossip.Delivered,
		Duplicates: st.Gossip.Duplicates, CacheMessages: st.Gossip.CacheMessages,
		CacheBytes: st.Gossip.CacheBytes, CacheMaxMessages: gc.CacheMessages, CacheMaxBytes: gc.CacheBytes,
		Subscribers: st.Subscribers, Rounds: st.Gossip.Rounds,
		Fanout: gc.Fanout, Interval: gc.Interval.String(), MaxPacketSize: gc.MaxPacketSize + security.Overhead,
		Encrypted: n.cfg.Keyring.Enabled(), Keys: len(n.cfg.Keyring.List()),
	}
	if n.cfg.Log == nil {
		s.LogMaxBytes = n.cfg.LogMaxBytes
	}
	if s.Encrypted {
		s.Cipher = n.sealer.Suite().String()
	}
	n.mu.Lock()
	started := n.started
	root, logged := n.core.MerkleRoot()
	s.LogBytes = n.log.Bytes()
	n.mu.Unlock()
	s.MerkleRoot, s.LogMessages = root.String(), logged
	if !started.IsZero() {
		s.UptimeSeconds = n.clock.Now().Sub(started).Seconds()
	}
	return s
}

// MaxPayload is the largest payload a message may carry here:
// Gossip.MaxMessageSize. Payloads that do not fit one datagram travel as
// chunks.
func (n *Node) MaxPayload() int { return n.core.Config().MaxMessageSize }
