package node

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/hearsay-io/hearsay/registry/dht"
	"github.com/hearsay-io/hearsay/registry/memberlist"
	"github.com/hearsay-io/hearsay/registry/static"
	"github.com/hearsay-io/hearsay/security"
)

// Registry kinds, as PeersInfo names them.
const (
	RegistryStatic     = "static"
	RegistryDHT        = "dht"
	RegistryMemberlist = "memberlist"
	RegistryCustom     = "custom"
)

// secureRand returns a PCG seeded from crypto/rand: a running node's
// choices (peers, request and session IDs) must not be predictable.
func secureRand() *rand.Rand {
	var seed [16]byte
	_, _ = crand.Read(seed[:])
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
}

// dhtPeersFile is where the DHT table is kept in the data dir.
const dhtPeersFile = "dht-peers"

// dhtSaveInterval is how often the DHT table is saved while running.
const dhtSaveInterval = time.Minute

// newDHT builds the DHT registry of Config.DHT and restores its saved
// table. maxPacket is the gossip core's datagram limit (sealing overhead
// already taken off).
func (n *Node) newDHT(maxPacket int) error {
	c := *n.cfg.DHT
	c.Self = n.id
	if self, ok := n.selfAddr(); ok {
		c.SelfAddr = self
	}
	c.Rand = secureRand() // request IDs are what keeps strangers from forging answers
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = maxPacket
	}
	reg, err := dht.NewRegistry(c)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if n.cfg.DataDir != "" {
		if err := reg.LoadFile(filepath.Join(n.cfg.DataDir, dhtPeersFile)); err != nil {
			// Not fatal: the bootstrap addresses still get us in.
			n.logger.Warn("DHT table not restored, joining through the bootstrap addresses", "err", err)
		}
	}
	n.dht = reg
	n.dhtKick = make(chan struct{}, 1)
	n.peers.setRegistry(reg)
	return nil
}

// selfAddr is this node's gossip address as others reach it, if known:
// Config.Advertise, else the bound address unless it is 0.0.0.0 or ::.
func (n *Node) selfAddr() (netip.AddrPort, bool) {
	if n.cfg.Advertise != "" {
		if ap, err := netip.ParseAddrPort(n.cfg.Advertise); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
		}
		if ua, err := net.ResolveUDPAddr("udp", n.cfg.Advertise); err == nil {
			ap := ua.AddrPort()
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
		}
		return netip.AddrPort{}, false
	}
	a := n.Addr()
	if a.Addr().IsUnspecified() {
		return netip.AddrPort{}, false
	}
	return a, true
}

// dhtLoop ticks the DHT at its NextTick, and saves its table.
func (n *Node) dhtLoop() {
	defer n.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	save := time.NewTicker(dhtSaveInterval)
	defer save.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-save.C:
			if err := n.saveDHT(); err != nil {
				n.logger.Warn("DHT table not saved", "err", err)
			}
			continue
		case <-n.dhtKick:
		case <-timer.C:
		}
		now := time.Now()
		if next := n.dht.NextTick(); !now.Before(next) {
			rd := n.dht.Tick(now)
			n.mu.Lock()
			if n.closed {
				n.mu.Unlock()
				return
			}
			n.sendLocked(rd.Datagrams, now)
			n.mu.Unlock()
		}
		timer.Reset(time.Until(n.dht.NextTick()))
	}
}

// kickDHT makes the DHT loop look at NextTick again: an input may have
// brought it forward (a request sent, whose timeout is due sooner).
func (n *Node) kickDHT() {
	select {
	case n.dhtKick <- struct{}{}:
	default:
	}
}

func (n *Node) saveDHT() error {
	if n.cfg.DataDir == "" {
		return nil
	}
	return n.dht.SaveFile(filepath.Join(n.cfg.DataDir, dhtPeersFile))
}

// DHT returns the node's DHT registry, or nil without Config.DHT.
func (n *Node) DHT() *dht.Registry { return n.dht }

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

// PeersInfo describes the node's peers for GET /v1/peers.
type PeersInfo struct {
	// Registry is "static", "dht", "memberlist" or "custom".
	Registry string `json:"registry"`
	// Peers are the registry's peers.
	Peers []string `json:"peers"`
	// Suspects are the peers skipped for gossip because they stopped
	// answering.
	Suspects []string `json:"suspects"`
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
