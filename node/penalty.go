package node

import "github.com/hearsay-io/hearsay/gossip"

// PenaltyJSON is a peer charged with offences (messages that failed their
// origin's signature), as GET /v1/peers shows it.
type PenaltyJSON struct {
	Addr     string  `json:"addr"`
	Score    float64 `json:"score"`    // offences, halving every 50 rounds; at 8 the peer is banned
	Offences uint64  `json:"offences"` // since it was first charged
	// BannedFor is how much longer the node does not pull from it, as a
	// Go duration; absent: not banned, only pulled from less.
	BannedFor string `json:"banned_for,omitempty"`
}

// Penalties returns the peers the core charged with offences.
func (n *Node) Penalties() []gossip.PeerPenalty {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.core.Penalties()
}

func penaltiesJSON(ps []gossip.PeerPenalty) []PenaltyJSON {
	out := make([]PenaltyJSON, 0, len(ps))
	for _, p := range ps {
		j := PenaltyJSON{Addr: p.Peer.String(), Score: p.Score, Offences: p.Offences}
		if p.Banned > 0 {
			j.BannedFor = p.Banned.String()
		}
		out = append(out, j)
	}
	return out
}
