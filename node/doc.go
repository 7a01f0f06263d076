// Package node runs a hearsay node: it drives the gossip core (package
// gossip) with a transport (a UDP socket by default), a clock (the system's
// by default), a seen filter, a message log and a registry of peers, and
// hands delivered messages to local subscribers. It also serves the local
// HTTP API (api.go).
//
// The files follow a datagram's way through the node:
//
//   - config.go: Config, its defaults (DefaultConfig) and their checks;
//   - node.go: New, which opens the node's parts in named steps, and Close;
//   - run.go: Start and the timers that tick the core, the DHT and the
//     peers file, on the node's Clock;
//   - receive.go: the receive path, from the transport through opening
//     sealed datagrams to the owner of each packet type;
//   - send.go: Publish and the send path, through the send limits and
//     sealing to the transport;
//   - subscription.go: subscriptions, fed by the core's deliveries;
//   - stats.go: Stats and Status;
//   - peers.go, limits.go: peer hygiene and the send limits;
//   - dht.go, memberlist.go, peersinfo.go: the registries the node runs.
//
// A Node is safe for concurrent use: one mutex guards the core and
// everything the paths above touch. The core never blocks, and the
// transport's SendBatch does not wait for the receiver, so the node sends
// while holding it.
package node
