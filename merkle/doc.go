// Package merkle is hearsay's anti-entropy: Merkle trees over the IDs of the
// messages a node retains, and the protocol by which two nodes find, in a
// few round trips and with bytes that grow with the number of differences
// rather than the number of messages, which IDs each lacks.
//
// A Tree holds a set of 16-byte IDs in a radix tree of fixed shape (fanout
// 2^FanoutBits; a subtree of at most LeafSize IDs is a leaf), so that two
// nodes' trees can be compared node by node. Leaf and inner hashes are
// domain-separated (a 0x00 or 0x01 byte first, as in RFC 6962), and empty
// subtrees hash to EmptyHash without being stored.
//
// Reconciliation is a pair of deterministic state machines that own no
// goroutine, socket or timer and never read the clock. The initiator runs a
// Session (or Sessions, for one session per peer at a time); the peer answers
// with a Responder, which keeps no state between queries. Every node keeps,
// beside each subtree's hash, a summary of its IDs (their XOR and the XOR
// of a mix of each), so that a subtree differing by one ID names it. A
// session (protocol v2) compares the roots, learns from the peer's short
// checks of 64 cells how many differences there are, splits each cell that
// differs into as many cells as make most of them hold at most one, and
// gets the summaries of those that differ; it ends with a check that the
// peer's root is its own with the differences applied (another pass, with
// other check bytes, if not). 100 differences among 10^6 IDs take about
// 4 KB and three round trips. Lost datagrams are resent after
// RetryTimeout, at most MaxAttempts times; every datagram fits in
// MaxPacketSize and a session spends at most MaxSessionBytes. A Responder
// also answers version 1 queries, for nodes of older releases, and a
// session whose v2 root query goes unanswered asks in v1 too, and goes on
// in v1 if that is what the peer answers.
// docs/anti-entropy.md gives the wire format byte by byte and the
// measurements behind the tree's shape and the protocol's constants.
//
// The caller's loop, in full (the initiator, every AEInterval, with one
// random peer; its queries are wire.AEQueryV2 datagrams, their answers
// wire.AEAnswerV2):
//
//	sessions, err := merkle.NewSessions[netip.AddrPort](tree, merkle.SessionsConfig{
//		Session: merkle.SessionConfig{Rand: rng},
//	})
//	responder, err := merkle.NewResponder(tree, merkle.ResponderConfig{})
//	for {
//		select {
//		case <-aeTicker.C:
//			sessions.Start(time.Now(), randomPeer())
//		case <-timer.C: // set to sessions.NextTick()
//			sessions.Tick(time.Now())
//		case dg := <-datagrams:
//			typ, body, err := wire.Parse(dg.Data)
//			switch {
//			case err != nil:
//			case typ == wire.AEQueryV2:
//				if answer, err := responder.AnswerV2(nil, body); err == nil {
//					conn.WriteToUDPAddrPort(answer, dg.From)
//				}
//			case typ == wire.AEQuery: // a node of an older release
//				if answer, err := responder.Answer(nil, body); err == nil {
//					conn.WriteToUDPAddrPort(answer, dg.From)
//				}
//			case typ == wire.AEAnswerV2:
//				sessions.Handle(time.Now(), dg.From, body)
//			case typ == wire.AEAnswer: // the session fell back to v1
//				sessions.HandleV1(time.Now(), dg.From, body)
//			}
//		}
//		rd := sessions.Ready()
//		for _, d := range rd.Datagrams {
//			conn.WriteToUDPAddrPort(d.Data, d.To)
//		}
//		for _, f := range rd.Finished {
//			pull(f.Peer, f.Result.Missing) // what this node lacks
//			push(f.Peer, f.Result.Extra)   // what the peer lacks
//		}
//		timer.Reset(time.Until(sessions.NextTick()))
//	}
//
// The tree must hold the IDs of the messages the node retains, and change
// only between inputs: Insert on acceptance, Remove on expiry.
package merkle
