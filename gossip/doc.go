// Package gossip is hearsay's protocol core: pull gossip as a deterministic
// state machine.
//
// A Core owns no goroutine, socket or timer and never reads the clock. Three
// inputs drive it:
//
//   - Tick(now): time has passed; pull from peers when a pull is due.
//   - Handle(now, from, datagram): a datagram arrived from a peer.
//   - Push(now, topic, payload): the application publishes a message.
//
// After any input, Ready returns what the caller must do: datagrams to send
// and messages to deliver to local subscribers. Randomness comes only from
// the seeded source in Config.Rand, so the same inputs always give the same
// outputs. The node runtime (package node) drives a Core with a UDP socket
// and real timers; the simulator (package simulations) drives thousands of
// them from one goroutine with a virtual clock; and tests drive a few with
// package gossiptest, on the in-memory network.
//
// The caller's loop, in full:
//
//	core, err := gossip.New(gossip.DefaultConfig(id, peers))
//	for {
//		select {
//		case <-timer.C: // set to core.NextTick()
//			core.Tick(time.Now())
//		case dg := <-datagrams:
//			core.Handle(time.Now(), dg.From, dg.Data)
//		case req := <-publishes:
//			msg, err := core.Push(time.Now(), req.Topic, req.Payload)
//			req.Reply(msg, err)
//		}
//		rd := core.Ready()
//		for _, d := range rd.Datagrams {
//			conn.WriteToUDPAddrPort(d.Data, d.To) // before the next input
//		}
//		for _, m := range rd.Messages {
//			deliver(m)
//		}
//		timer.Reset(time.Until(core.NextTick()))
//	}
//
// # The protocol
//
// Every round (Interval, default 200ms) a node pulls from Fanout random peers
// (default 3), one pull every Interval/Fanout. A pull carries a digest of
// what the puller holds: for each origin with recent messages, the ranges of
// that origin's sequence numbers it has. The peer answers with the messages
// of its propagation cache that lie outside those ranges, and only those,
// packed into datagrams of at most MaxPacketSize bytes and under a
// per-request byte budget. Because the pulls of a round are spaced out, each
// digest already counts what the previous pull brought, and a node rarely
// receives a message twice. docs/protocol.md gives the wire format byte by
// byte and the measurements behind the choice of digest.
//
// A message is accepted once per node, as the seen filter (package filter)
// decides; it is then offered to pullers for CacheRounds rounds.
//
// # Long-poll
//
// A pull may also stay open at the peer (park.go): answered at once, then
// parked, so that the peer sends it each new message as it accepts it, or
// a HINT of it. Each node keeps a few such eager pulls, its subscriptions
// (subscribe.go), which together make a tree: a message crosses each hop
// in a link delay instead of waiting for the next round, and still moves
// only to a peer that asked for it. The round pulls go on as the safety
// net. docs/latency.md describes it and its measurements.
//
// # Large messages
//
// A payload too large for one datagram, up to MaxMessageSize (1 MiB by
// default), is cut into chunks with consecutive sequence numbers. Each chunk
// is gossiped, cached, logged and repaired like a message of its own, so a
// lost chunk is pulled again alone; every node reassembles the message,
// checks its payload against its ID, and delivers it whole, once, when its
// last chunk arrives. Chunks never appear in Ready. A Reassembler does the
// same for the entries of the message log, for replays.
//
// # Trust
//
// With Config.SigningKey (sign.go), an origin covers its messages with
// statements: messages of their own, each signing the hash of the IDs of a
// window of its sequence numbers with its Ed25519 key. A signing core holds
// every received message back (pending.go) until a verified statement
// covers it, finds forgeries by the signed hash, and penalises the peers
// that sent them (penalty.go): they are pulled from less, then not at all.
// With Config.Validate (validate.go), each message then waits for the
// caller's verdict (Ready.Validate, Verdict) before it is accepted.
package gossip
