// Package dht is a registry of gossip peers found through a Kademlia
// distributed hash table, for clusters too large or too dynamic for a
// static peer list.
//
// Each node keeps a Kademlia peer table keyed by its gossip node ID
// (128-bit XOR space, k-buckets of K = 16) and finds others with iterative
// FIND_NODE lookups (Alpha = 3 requests in flight). Its packets travel over
// the node's own gossip socket with packet types 0x20 to 0x2f;
// docs/registries.md describes them byte by byte.
//
// # Whom gossip talks to
//
// A Kademlia table is skewed toward its owner's region of the ID space, and
// its far buckets hold whoever was seen first: sampling gossip peers from it
// would make a few nodes hubs. Gossip peers are sampled instead from a pool
// of contacts spread uniformly over the whole network: regions of the ID
// space chosen uniformly at random, each enumerated by one lookup, so that
// every node is in the pool with the same probability (see pool.go and the
// measurements in docs/registries.md). Contacts are pinged when silent for
// PingInterval; one that misses a request is not handed to gossip until it
// answers again, and is evicted after FailLimit misses.
//
// # Driving a Table
//
// A Table is a deterministic state machine like the gossip core: it owns no
// goroutine, socket or timer and never reads the clock. Registry wraps it in
// a mutex for the node runtime, which shares it between its read loop, its
// timer and the gossip core (as its PeerSampler). The caller's loop:
//
//	reg, err := dht.NewRegistry(dht.Config{Self: id, SelfAddr: addr, Bootstrap: joinAddrs, Rand: seeded})
//	reg.LoadFile(filepath.Join(dataDir, "dht-peers")) // rejoin fast after a restart
//	for {
//		var rd dht.Ready
//		select {
//		case <-timer.C: // set to reg.NextTick()
//			rd = reg.Tick(time.Now())
//		case dg := <-datagrams: // opened (unsealed) datagrams for which dht.IsPacket is true
//			rd = reg.Handle(time.Now(), dg.From, dg.Data)
//		case <-saveTicker.C:
//			reg.SaveFile(filepath.Join(dataDir, "dht-peers"))
//		}
//		for _, d := range rd.Datagrams {
//			conn.WriteToUDPAddrPort(seal(d.Data), d.To)
//		}
//		timer.Reset(time.Until(reg.NextTick()))
//	}
//
// Gossip then samples peers with reg.SamplePeers, as from any registry.
//
// Answers to a node that has not proved its address (by answering a request
// of ours) never exceed three times the request's size, as QUIC's
// anti-amplification rule asks; FIND_NODE requests are padded so that a
// full answer fits. Requests are this node's own traffic, bounded by Alpha,
// MaxLookups and the ping schedule.
package dht
