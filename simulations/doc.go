// Package simulations runs hearsay's real protocol code, for up to millions
// of nodes at once, on an in-memory network with a virtual clock. Runs are
// deterministic: the same configuration and seed give the same run,
// datagram for datagram, whatever the machine.
//
// A Simulator drives one gossip.Core per node from one goroutine. Ticks are
// kept in a calendar of node indices per virtual millisecond, and datagrams
// travel through transport.Network, which adds latency, loss and
// partitions. Around that the simulator models churn (nodes that crash,
// restart with or without their seen filter, or join late) and clock skew
// (a per-node offset added to the time given to that node's core), and
// records, per message, when each node first delivered it.
//
// Run drives a whole experiment from a Config: warm-up, publication, one
// row of statistics per gossip round, until every node that is up holds
// every message or nothing more can change; its Report also gives the
// delivery latency in virtual milliseconds, timed at each delivery
// (DeliveryLatency). The scenario functions
// (Broadcast, PartitionAndHeal, CrashAndRestart, LateJoin, SkewedClocks) are
// Runs set up to show one property of the protocol each; "hearsay
// simulate" is the command-line front end, and docs/simulations.md
// describes the models, the spec syntax and the outputs.
//
// The peer model (PeerModel) says whom each node pulls from: full
// membership, a static random graph, or the DHT registry itself, a
// dht.Table per node fed with its own datagrams through the same network
// (DHT). With Config.AntiEntropy every core also keeps a message log and
// runs Merkle anti-entropy; without it, a run shows what gossip alone does.
package simulations
