package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hearsay-io/hearsay/gossip"
)

// statsCollector turns a node's counters into Prometheus metrics at scrape time,
// so that the hot path only increments plain integers.
type statsCollector struct {
	n                                      *Node
	published, delivered, duplicates       *prometheus.Desc
	refused, dropped                       *prometheus.Desc
	datagrams, bytes, pulls, messagesWire  *prometheus.Desc
	peers, cacheMessages, cacheBytes, subs *prometheus.Desc
	filterIDs, rounds, socketErrors        *prometheus.Desc
	datagramDrops, encrypted               *prometheus.Desc
	aeSessions, aeFailures, aeRepaired     *prometheus.Desc
	aePushed, aeBytes, logMessages         *prometheus.Desc
	aeRepairsQueued, aeRepairsDropped      *prometheus.Desc
	mores, repulls                         *prometheus.Desc
	suspects, suspected, pullsSkipped      *prometheus.Desc
	pullAcks, chunks, reassembled          *prometheus.Desc
	partialMessages, partialBytes          *prometheus.Desc
	statements, pending, verified, banned  *prometheus.Desc
	rejected, ignored, validatorErrors     *prometheus.Desc
	awaiting                               *prometheus.Desc
}

func newStatsCollector(n *Node) *statsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("hearsay_"+name, help, labels, nil)
	}
	return &statsCollector{
		n:             n,
		published:     d("messages_published_total", "Messages published by this node."),
		delivered:     d("messages_delivered_total", "Messages delivered to this node's subscribers, each once (published here or received)."),
		duplicates:    d("messages_duplicate_total", "Received copies of messages already held."),
		refused:       d("messages_refused_total", "Publishes refused, by reason.", "reason"),
		dropped:       d("messages_dropped_total", "Received datagrams or messages dropped, by reason.", "reason"),
		datagrams:     d("datagrams_total", "UDP datagrams, by direction.", "direction"),
		bytes:         d("bytes_total", "UDP payload bytes, by direction.", "direction"),
		pulls:         d("pulls_total", "Pull requests, by direction.", "direction"),
		messagesWire:  d("message_copies_total", "Message copies carried in answers to pulls, by direction.", "direction"),
		peers:         d("peers", "Peers in the registry."),
		cacheMessages: d("cache_messages", "Messages in the propagation cache."),
		cacheBytes:    d("cache_bytes", "Encoded bytes in the propagation cache."),
		subs:          d("subscribers", "Open subscriptions."),
		filterIDs:     d("filter_ids", "Message IDs held by the seen filter."),
		rounds:        d("rounds_total", "Gossip rounds started."),
		socketErrors:  d("socket_errors_total", "UDP read and write errors, and oversized datagrams.", "kind"),
		datagramDrops: d("datagrams_dropped_total", "Datagrams dropped by the node before or after the protocol core: "+
			"security (plaintext, sealed, truncated, wrong_cipher, unknown_key, auth_failed, stale, replay) and send limits (amplification, peer_round_cap).", "reason"),
		encrypted:        d("encrypted", "1 if this node seals its datagrams."),
		aeSessions:       d("ae_sessions_total", "Anti-entropy sessions started by this node."),
		aeFailures:       d("ae_failures_total", "Anti-entropy sessions that ended with an error (timeout, protocol)."),
		aeRepaired:       d("ae_repaired_messages_total", "Messages anti-entropy found missing here, and fetched."),
		aePushed:         d("ae_pushed_messages_total", "Messages pushed to peers that anti-entropy found lacking them."),
		aeBytes:          d("ae_bytes_total", "Anti-entropy bytes: queries, answers and fetches, by direction.", "direction"),
		logMessages:      d("log_messages", "Messages in the message log (the retention window)."),
		aeRepairsQueued:  d("ae_repairs_queued", "Differences anti-entropy found, still to be fetched or pushed: they wait until gossip can no longer deliver them, then go a round's worth per peer and round."),
		aeRepairsDropped: d("ae_repairs_dropped_total", "Differences not repaired because repairs with more than 32 peers were queued; a later session finds them again."),
		mores:            d("mores_total", "MOREs: answers cut short by their byte budget that invited a pull again; out: sent, ignored: received from a peer not pulled lately or past the limits.", "direction"),
		repulls:          d("repulls_total", "Pulls sent again at once on a MORE."),
		suspects:         d("peers_suspect", "Peers skipped for gossip because they stopped answering."),
		suspected:        d("peers_suspected_total", "Times a peer was found not answering and skipped."),
		pullsSkipped:     d("pulls_skipped_total", "Pulls not sent to a peer that stopped answering."),
		pullAcks:         d("pull_acks_total", "PULL_ACKs sent: answers to pulls that lacked nothing, so the puller knows this node lives."),
		chunks:           d("chunks_total", "Chunks of large messages accepted, each once (not counted as messages delivered)."),
		reassembled:      d("messages_reassembled_total", "Large messages reassembled from received chunks (also counted as delivered)."),
		partialMessages:  d("partial_messages", "Large messages being reassembled."),
		partialBytes:     d("partial_bytes", "Memory reserved for large messages being reassembled."),
		statements:       d("statements_total", "Signed statements (with --sign): out, signed here; in, received and verified, each once.", "direction"),
		pending:          d("messages_pending", "Messages held back until a statement of their origin verifies them (with --sign)."),
		verified:         d("messages_verified_total", "Received messages a verified statement covered, then accepted (with --sign)."),
		banned:           d("peers_banned", "Peers not pulled from for relaying messages that failed their origin's signature or their validation."),
		rejected:         d("messages_rejected_total", "Messages the validator rejected (received, or published here: refused with 422)."),
		ignored:          d("messages_ignored_total", "Messages the validator ignored (received, or published here: refused with 409)."),
		validatorErrors:  d("validator_errors_total", "Validator calls that gave no verdict (unreachable, timed out, another status); the message waits and is asked again."),
		awaiting:         d("messages_awaiting_verdict", "Messages waiting for the validator's verdict."),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.published, c.delivered, c.duplicates, c.refused, c.dropped,
		c.datagrams, c.bytes, c.pulls, c.messagesWire, c.peers, c.cacheMessages, c.cacheBytes, c.subs,
		c.filterIDs, c.rounds, c.socketErrors, c.datagramDrops, c.encrypted,
		c.aeSessions, c.aeFailures, c.aeRepaired, c.aePushed, c.aeBytes, c.logMessages, c.aeRepairsQueued, c.aeRepairsDropped, c.mores, c.repulls,
		c.suspects, c.suspected, c.pullsSkipped, c.pullAcks, c.chunks, c.reassembled,
		c.partialMessages, c.partialBytes, c.statements, c.pending, c.verified, c.banned,
		c.rejected, c.ignored, c.validatorErrors, c.awaiting} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.Stats()
	g := s.Gossip
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(c.statements, s.Trust.StatementsOut, "out")
	counter(c.statements, s.Trust.StatementsIn, "in")
	gauge(c.pending, s.Trust.PendingNow)
	counter(c.verified, s.Trust.Verified)
	gauge(c.banned, s.Trust.PeersBanned)
	counter(c.rejected, s.Rejected)
	counter(c.ignored, s.Ignored)
	counter(c.validatorErrors, s.ValidatorErrors)
	gauge(c.awaiting, s.Trust.AwaitingNow)
	counter(c.published, g.Published)
	counter(c.delivered, g.Delivered)
	counter(c.duplicates, g.Duplicates)
	for i, reason := range RefusalReasons {
		counter(c.refused, s.Refused[i], reason)
	}
	for _, r := range gossip.DropReasons() {
		counter(c.dropped, g.Dropped[r], r.String())
	}
	counter(c.datagrams, s.UDP.DatagramsIn, "in")
	counter(c.datagrams, s.UDP.DatagramsOut, "out")
	counter(c.bytes, s.UDP.BytesIn, "in")
	counter(c.bytes, s.UDP.BytesOut, "out")
	counter(c.pulls, g.PullsSent, "out")
	counter(c.pulls, g.PullsIn, "in")
	counter(c.messagesWire, g.MessagesOut, "out")
	counter(c.messagesWire, g.MessagesIn, "in")
	gauge(c.peers, len(c.n.Peers()))
	gauge(c.cacheMessages, g.CacheMessages)
	gauge(c.cacheBytes, g.CacheBytes)
	gauge(c.subs, s.Subscribers)
	gauge(c.filterIDs, s.FilterIDs)
	counter(c.rounds, g.Rounds)
	counter(c.socketErrors, s.UDP.ReadErrors, "read")
	counter(c.socketErrors, s.UDP.WriteErrors, "write")
	counter(c.socketErrors, s.UDP.Oversized, "oversized")
	for _, reason := range datagramDropReasons {
		counter(c.datagramDrops, s.Drops[reason], reason)
	}
	enc := 0
	if c.n.Encrypted() {
		enc = 1
	}
	gauge(c.encrypted, enc)
	counter(c.aeSessions, g.AESessions)
	counter(c.aeFailures, g.AEFailures)
	counter(c.aeRepaired, g.AEMissing)
	counter(c.aePushed, g.AEPushed)
	counter(c.aeBytes, g.AEBytesIn, "in")
	counter(c.aeBytes, g.AEBytesOut, "out")
	gauge(c.aeRepairsQueued, g.AERepairsQueued)
	counter(c.mores, g.MoresOut, "out")
	counter(c.mores, g.MoresIgnored, "ignored")
	counter(c.repulls, g.Repulls)
	counter(c.aeRepairsDropped, g.AERepairsDropped)
	_, logged := c.n.merkleRoot()
	gauge(c.logMessages, logged)
	gauge(c.suspects, s.Peers.Suspects)
	counter(c.suspected, s.Peers.Suspected)
	counter(c.pullsSkipped, s.Peers.PullsSkipped)
	counter(c.pullAcks, s.Peers.AcksSent)
	counter(c.chunks, g.Chunks)
	counter(c.reassembled, g.Reassembled)
	gauge(c.partialMessages, g.PartialMessages)
	gauge(c.partialBytes, g.PartialBytes)
}

// datagramDropReasons are the labels of hearsay_datagrams_dropped_total,
// all exported from the start so that rates work from the first scrape.
var datagramDropReasons = []string{"plaintext", "sealed", "truncated", "wrong_cipher", "unknown_key", "auth_failed",
	"stale", "replay", "seal_error", "amplification", "peer_round_cap"}
