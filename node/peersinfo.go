package node

import (
	"time"

	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/registry/dns"
	"github.com/hearsay-io/hearsay/registry/memberlist"
	"github.com/hearsay-io/hearsay/registry/static"
)

// Registry kinds, as PeersInfo names them.
const (
	RegistryStatic     = "static"
	RegistryDHT        = "dht"
	RegistryDNS        = "dns"
	RegistryMemberlist = "memberlist"
	RegistryCustom     = "custom"
)

// PeersInfo describes the node's peers for GET /v1/peers.
type PeersInfo struct {
	// Registry is "static", "dht", "dns", "memberlist" or "custom".
	Registry string `json:"registry"`
	// Peers are the registry's peers.
	Peers []string `json:"peers"`
	// Suspects are the peers skipped for gossip because they stopped
	// answering.
	Suspects []string `json:"suspects"`
	// Penalised are the peers charged with offences: relaying messages
	// that failed their origin's signature or the validator; absent when
	// none.
	Penalised []PenaltyJSON `json:"penalised,omitempty"`
	// Buckets is the DHT's bucket fill (dht only).
	Buckets []BucketJSON `json:"buckets,omitempty"`
	// Contacts are the DHT's contacts (dht only).
	Contacts []ContactJSON `json:"contacts,omitempty"`
	// Members are memberlist's members (memberlist only).
	Members []MemberJSON `json:"members,omitempty"`
}

// BucketJSON is one DHT bucket.
type BucketJSON struct {
	Index        int `json:"index"`
	Contacts     int `json:"contacts"`
	Answering    int `json:"answering"`
	Replacements int `json:"replacements"`
}

// ContactJSON is one DHT contact.
type ContactJSON struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Bucket    int    `json:"bucket"` // -1: only in the sample pool
	InPool    bool   `json:"in_pool"`
	LastSeen  string `json:"last_seen,omitempty"`
	Fails     int    `json:"fails"`
	Answering bool   `json:"answering"`
}

// MemberJSON is one memberlist member.
type MemberJSON struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	GossipAddr string `json:"gossip_addr"`
	State      string `json:"state"`
	Self       bool   `json:"self,omitempty"`
}

// PeersInfo returns the node's peers, and its registry's table.
func (n *Node) PeersInfo() PeersInfo {
	info := PeersInfo{Registry: RegistryCustom, Peers: []string{}, Suspects: []string{}}
	reg := n.Registry()
	for _, p := range reg.Peers() {
		info.Peers = append(info.Peers, p.String())
	}
	for _, p := range n.SuspectPeers() {
		info.Suspects = append(info.Suspects, p.String())
	}
	info.Penalised = penaltiesJSON(n.Penalties())
	switch r := reg.(type) {
	case *static.Registry:
		info.Registry = RegistryStatic
	case *dht.Registry:
		info.Registry = RegistryDHT
		for _, b := range r.Buckets() {
			info.Buckets = append(info.Buckets, BucketJSON(b))
		}
		for _, c := range r.Contacts() {
			cj := ContactJSON{ID: c.ID.String(), Addr: c.Addr.String(), Bucket: c.Bucket, InPool: c.InPool,
				Fails: c.Fails, Answering: c.Answering}
			if !c.LastSeen.IsZero() {
				cj.LastSeen = c.LastSeen.UTC().Format(time.RFC3339Nano)
			}
			info.Contacts = append(info.Contacts, cj)
		}
	case *dns.Registry:
		info.Registry = RegistryDNS
	case *memberlist.Registry:
		info.Registry = RegistryMemberlist
		for _, m := range r.Members() {
			mj := MemberJSON{Name: m.Name, Addr: m.Addr.String(), State: m.State, Self: m.Self}
			if m.GossipAddr.IsValid() {
				mj.GossipAddr = m.GossipAddr.String()
			}
			info.Members = append(info.Members, mj)
		}
	}
	return info
}
