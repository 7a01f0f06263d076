package node

import (
	"net/http"

	vmetrics "github.com/VictoriaMetrics/metrics"

	"github.com/hearsay-io/hearsay/gossip"
	"github.com/hearsay-io/hearsay/node/exposition"
)

// writeMetrics writes the node's counters as Prometheus metrics, read at
// scrape time, so that the hot path only increments plain integers. The
// names, types, labels and help texts are those docs/api.md lists.
func (n *Node) writeMetrics(w *exposition.Writer) {
	s := n.Stats()
	g := s.Gossip
	// counter and gauge write a family of one sample; counterBy one of a
	// sample per value of its one label.
	counter := func(name, help string, v uint64) {
		w.Family("hearsay_"+name, exposition.TypeCounter, help)
		w.Uint("hearsay_"+name, v)
	}
	gauge := func(name, help string, v int) {
		w.Family("hearsay_"+name, exposition.TypeGauge, help)
		w.Sample("hearsay_"+name, float64(v))
	}
	counterBy := func(name, help, label string, values ...labelled) {
		w.Family("hearsay_"+name, exposition.TypeCounter, help)
		for _, v := range values {
			w.Uint("hearsay_"+name, v.n, exposition.Label{Name: label, Value: v.value})
		}
	}
	counter("messages_published_total", "Messages published by this node.", g.Published)
	counter("messages_delivered_total", "Messages delivered to this node's subscribers, each once (published here or received).", g.Delivered)
	counter("messages_duplicate_total", "Received copies of messages already held.", g.Duplicates)
	var refused []labelled
	for i, reason := range RefusalReasons {
		refused = append(refused, labelled{reason, s.Refused[i]})
	}
	counterBy("messages_refused_total", "Publishes refused, by reason.", "reason", refused...)
	var dropped []labelled
	for _, r := range gossip.DropReasons() {
		dropped = append(dropped, labelled{r.String(), g.Dropped[r]})
	}
	counterBy("messages_dropped_total", "Received datagrams or messages dropped, by reason.", "reason", dropped...)
	counterBy("datagrams_total", "UDP datagrams, by direction.", "direction",
		labelled{"in", s.UDP.DatagramsIn}, labelled{"out", s.UDP.DatagramsOut})
	counterBy("bytes_total", "UDP payload bytes, by direction.", "direction",
		labelled{"in", s.UDP.BytesIn}, labelled{"out", s.UDP.BytesOut})
	counterBy("pulls_total", "Pull requests, by direction.", "direction",
		labelled{"out", g.PullsSent}, labelled{"in", g.PullsIn})
	counterBy("message_copies_total", "Message copies carried in answers to pulls, by direction.", "direction",
		labelled{"out", g.MessagesOut}, labelled{"in", g.MessagesIn})
	gauge("peers", "Peers in the registry.", len(n.Peers()))
	gauge("cache_messages", "Messages in the propagation cache.", g.CacheMessages)
	gauge("cache_bytes", "Encoded bytes in the propagation cache.", g.CacheBytes)
	gauge("subscribers", "Open subscriptions.", s.Subscribers)
	gauge("filter_ids", "Message IDs held by the seen filter.", s.FilterIDs)
	counter("rounds_total", "Gossip rounds started.", g.Rounds)
	counterBy("socket_errors_total", "UDP read and write errors, and oversized datagrams.", "kind",
		labelled{"read", s.UDP.ReadErrors}, labelled{"write", s.UDP.WriteErrors}, labelled{"oversized", s.UDP.Oversized})
	var drops []labelled
	for _, reason := range datagramDropReasons {
		drops = append(drops, labelled{reason, s.Drops[reason]})
	}
	counterBy("datagrams_dropped_total", "Datagrams dropped by the node before or after the protocol core: "+
		"security (plaintext, sealed, truncated, wrong_cipher, unknown_key, auth_failed, stale, replay) and send limits (amplification, peer_round_cap).",
		"reason", drops...)
	enc := 0
	if n.Encrypted() {
		enc = 1
	}
	gauge("encrypted", "1 if this node seals its datagrams.", enc)
	counter("ae_sessions_total", "Anti-entropy sessions started by this node.", g.AESessions)
	counter("ae_failures_total", "Anti-entropy sessions that ended with an error (timeout, protocol).", g.AEFailures)
	counter("ae_repaired_messages_total", "Messages anti-entropy found missing here, and fetched.", g.AEMissing)
	counter("ae_pushed_messages_total", "Messages pushed to peers that anti-entropy found lacking them.", g.AEPushed)
	counterBy("ae_bytes_total", "Anti-entropy bytes: queries, answers and fetches, by direction.", "direction",
		labelled{"in", g.AEBytesIn}, labelled{"out", g.AEBytesOut})
	gauge("ae_repairs_queued", "Differences anti-entropy found, still to be fetched or pushed: they wait until gossip can no longer deliver them, then go a round's worth per peer and round.", g.AERepairsQueued)
	counterBy("mores_total", "MOREs: answers cut short by their byte budget that invited a pull again; out: sent, ignored: received from a peer not pulled lately or past the limits.", "direction",
		labelled{"out", g.MoresOut}, labelled{"ignored", g.MoresIgnored})
	counter("repulls_total", "Pulls sent again at once on a MORE.", g.Repulls)
	counter("ae_repairs_dropped_total", "Differences not repaired because repairs with more than 32 peers were queued; a later session finds them again.", g.AERepairsDropped)
	_, logged := n.merkleRoot()
	gauge("log_messages", "Messages in the message log (the retention window).", logged)
	counter("log_evicted_total", "Messages the message log evicted, oldest created first, to stay within --log-max-bytes before their retention ended.", g.LogEvicted)
	counter("messages_uncached_total", "Messages accepted but not cached, the propagation cache being full: anti-entropy repairs older than gossip's window.", g.Uncached)
	gauge("peers_suspect", "Peers skipped for gossip because they stopped answering.", s.Peers.Suspects)
	counter("peers_suspected_total", "Times a peer was found not answering and skipped.", s.Peers.Suspected)
	counter("pulls_skipped_total", "Pulls not sent to a peer that stopped answering.", s.Peers.PullsSkipped)
	counter("pull_acks_total", "PULL_ACKs sent: answers to pulls that lacked nothing, so the puller knows this node lives.", s.Peers.AcksSent)
	counter("chunks_total", "Chunks of large messages accepted, each once (not counted as messages delivered).", g.Chunks)
	counter("messages_reassembled_total", "Large messages reassembled from received chunks (also counted as delivered).", g.Reassembled)
	gauge("partial_messages", "Large messages being reassembled.", g.PartialMessages)
	gauge("partial_bytes", "Memory reserved for large messages being reassembled.", g.PartialBytes)
	counterBy("statements_total", "Signed statements (with --sign): out, signed here; in, received and verified, each once.", "direction",
		labelled{"out", s.Trust.StatementsOut}, labelled{"in", s.Trust.StatementsIn})
	gauge("messages_pending", "Messages held back until a statement of their origin verifies them (with --sign).", s.Trust.PendingNow)
	counter("messages_verified_total", "Received messages a verified statement covered, then accepted (with --sign).", s.Trust.Verified)
	counter("statements_awaited_key_total", "Keyless statements that waited for their origin's key (with --sign).", s.Trust.AwaitedKey)
	gauge("peers_banned", "Peers not pulled from for relaying messages that failed their origin's signature or their validation.", s.Trust.PeersBanned)
	counter("messages_rejected_total", "Messages the validator rejected (received, or published here: refused with 422).", s.Rejected)
	counter("messages_ignored_total", "Messages the validator ignored (received, or published here: refused with 409).", s.Ignored)
	counter("validator_errors_total", "Validator calls that gave no verdict (unreachable, timed out, another status); the message waits and is asked again.", s.ValidatorErrors)
	gauge("messages_awaiting_verdict", "Messages waiting for the validator's verdict.", s.Trust.AwaitingNow)
	n.tickSeconds.WriteTo(w)
}

// labelled is a counter's value for one value of its label.
type labelled struct {
	value string
	n     uint64
}

// newTickHistogram is hearsay_round_duration_seconds: 10 µs to 2.6 s.
func newTickHistogram() *exposition.Histogram {
	return exposition.NewHistogram("hearsay_round_duration_seconds",
		"Time the node spends in one gossip tick: digest, pulls sent, cache and filter upkeep.",
		exposition.ExponentialBuckets(10e-6, 4, 10))
}

// datagramDropReasons are the labels of hearsay_datagrams_dropped_total,
// all exported from the start so that rates work from the first scrape.
var datagramDropReasons = []string{"plaintext", "sealed", "truncated", "wrong_cipher", "unknown_key", "auth_failed",
	"stale", "replay", "seal_error", "amplification", "peer_round_cap"}

// serveMetrics is GET /metrics: the node's metrics, and the Go runtime's
// and the process's when APIConfig.ProcessMetrics asks for them.
func (a *API) serveMetrics(w http.ResponseWriter, r *http.Request) {
	var out exposition.Writer
	a.node.writeMetrics(&out)
	if a.cfg.ProcessMetrics {
		// VictoriaMetrics/metrics reads them from the runtime and /proc,
		// with TYPE lines when its metadata is on (NewAPI turns it on).
		vmetrics.WriteGoMetrics(&out)
		vmetrics.WriteProcMetrics(&out)
		vmetrics.WriteFDMetrics(&out)
	}
	w.Header().Set("Content-Type", exposition.ContentType)
	w.Write(out.Bytes())
}
