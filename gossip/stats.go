package gossip

// DropReason says why a datagram or a message was dropped.
type DropReason int

// Drop reasons. Each is a label of the dropped-messages metric.
const (
	DropMalformed         DropReason = iota // a datagram that does not decode
	DropVersion                             // a datagram of another wire version
	DropUnknownType                         // a packet type this version does not know
	DropTooOld                              // a message older than MaxAge
	DropFromFuture                          // a message created more than ClockSkew ahead
	DropTooLarge                            // a message that does not fit our MaxPacketSize, or a chunk of one above MaxMessageSize
	DropCacheFull                           // no room in the propagation cache: pulled again later
	DropFilterFull                          // the seen filter is full: pulled again later
	DropFilterError                         // the seen filter failed: pulled again later
	DropChunkInconsistent                   // a chunk that disagrees with the other chunks of its message
	DropChunkMismatch                       // a large message whose chunks do not hash to its ID: discarded
	DropReassemblyTimeout                   // a large message not complete within ReassemblyTimeout: discarded
	DropPartialFull                         // a chunk that would start a message past MaxPartialBytes: pulled again later
	DropBadSignature                        // a message or statement its origin did not sign (pending.go)
	DropUnsigned                            // a message held back that no statement covered in time: pulled again later
	DropPendingFull                         // a message past the bounds of what is held back for signatures: pulled again later
	DropValidationFull                      // a message past MaxAwaiting waiting for the validator: pulled again later
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	"malformed", "version", "unknown_type", "too_old", "from_future",
	"too_large", "cache_full", "filter_full", "filter_error",
	"chunk_inconsistent", "chunk_mismatch", "reassembly_timeout", "partial_full",
	"bad_signature", "unsigned", "pending_full", "validation_full",
}

func (r DropReason) String() string {
	if r >= 0 && r < numDropReasons {
		return dropReasonNames[r]
	}
	return "unknown"
}

// DropReasons lists every drop reason, for metrics.
func DropReasons() []DropReason {
	rs := make([]DropReason, numDropReasons)
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}

// Stats are a core's counters (since New) and gauges (now).
type Stats struct {
	Rounds             uint64 // rounds started
	PullsSent          uint64 // pull request datagrams sent
	PullBytesOut       uint64 // bytes of those
	PullsIn            uint64 // pull requests received and answered
	AnswerDatagramsOut uint64 // datagrams of messages sent in answer to pulls
	MessagesOut        uint64 // message copies sent in answers
	MessagesIn         uint64 // message copies received
	DatagramsOut       uint64 // all datagrams sent
	BytesOut           uint64 // all bytes sent
	DatagramsIn        uint64 // all datagrams received
	BytesIn            uint64 // all bytes received
	Published          uint64 // messages pushed by this node
	Delivered          uint64 // messages accepted (pushed or received), each once; a large message once, whole
	Chunks             uint64 // chunks of large messages accepted (pushed or received), each once; not in Delivered
	Reassembled        uint64 // large messages reassembled from received chunks (also in Delivered)
	Duplicates         uint64 // received messages already held
	Backpressure       uint64 // pushes refused with ErrBackpressure
	FilterErrors       uint64 // seen-filter errors (I/O)
	LogErrors          uint64 // message-log errors (I/O)
	LogEvicted         uint64 // messages the log evicted, oldest created first, to stay within its byte bound before their retention ended
	Uncached           uint64 // messages accepted but not cached, the cache being full: repairs older than gossip's window (Core.pastGossipWindow)
	AESessions         uint64 // anti-entropy sessions started
	AEFailures         uint64 // sessions that ended with an error (timeout, protocol)
	AEMissing          uint64 // messages sessions found missing here (fetched)
	AEPushed           uint64 // messages pushed to peers that lacked them
	AEBytesOut         uint64 // anti-entropy bytes sent: queries, answers, fetches
	AEBytesIn          uint64 // anti-entropy bytes received
	MoresOut           uint64 // MOREs sent: answers cut short by their budget, with budget left this round for a pull again
	Repulls            uint64 // pulls sent again at once on a MORE
	RoundPullsSkipped  uint64 // round pulls not sent to a peer being pulled again on MOREs
	MoresIgnored       uint64 // MOREs from peers not pulled lately, past the pulls again allowed per peer and round, or while another peer is pulled again
	AERepairsDropped   uint64 // differences not repaired because repairs with more than 32 peers were queued (a later session finds them again)
	Parked             uint64 // long-poll pulls parked here (a peer's newer pull replacing its last counts again)
	ParkRefused        uint64 // long-poll pulls answered but not parked: MaxParked were
	ParkExpired        uint64 // parked pulls that expired without a hint
	ParkedSends        uint64 // datagrams of new messages sent to parked pulls (also in AnswerDatagramsOut)
	ParkCut            uint64 // parked pulls hinted and forgotten because the peer's budget of the round was spent
	HintsOut           uint64 // hints sent to lazy parked pulls
	HintsIn            uint64 // hints received
	HintsIgnored       uint64 // hints that named nothing lacking, or what the subscription brought meanwhile, came from a peer not long-polled, or during another graft
	Grafts             uint64 // subscriptions made at a peer whose hint named a message this node lacked, and its subscriptions did not bring
	Reciprocated       uint64 // subscriptions made back at a peer that subscribed here
	Prunes             uint64 // subscriptions dropped: they brought a message again, or their peer dropped its own here
	Dropped            [numDropReasons]uint64

	CacheMessages   int // messages in the propagation cache
	CacheBytes      int // their encoded size
	Origins         int // origins in the pull digest
	PartialMessages int // large messages being reassembled
	AERepairsQueued int // differences found by anti-entropy, still to be fetched or pushed
	AERunning       int // anti-entropy sessions under way: AESessions - AEFailures - AERunning ended with the logs compared
	PartialBytes    int // their cost against MaxPartialBytes
	ParkedPulls     int // peers' long-poll pulls parked here now
	Subscriptions   int // this node's subscriptions: its pulls parked eagerly at peers
}

// Stats returns the core's counters and gauges.
func (c *Core) Stats() Stats {
	s := c.stats
	s.CacheMessages = c.cache.lru.Len()
	s.CacheBytes = c.cache.bytes
	s.Origins = len(c.held.origins)
	s.PartialMessages = c.reasm.len()
	if c.ae != nil {
		for _, r := range c.ae.repairs {
			s.AERepairsQueued += len(r.ids)
		}
		s.AERunning = c.ae.sessions.Len()
	}
	s.PartialBytes = c.reasm.bytes
	s.ParkedPulls = len(c.parked.pulls)
	s.Subscriptions = c.subscriptions()
	return s
}

// Add adds every counter and gauge of o to s, so that s sums the stats of
// several cores.
func (s *Stats) Add(o Stats) {
	s.Rounds += o.Rounds
	s.PullsSent += o.PullsSent
	s.PullBytesOut += o.PullBytesOut
	s.PullsIn += o.PullsIn
	s.AnswerDatagramsOut += o.AnswerDatagramsOut
	s.MessagesOut += o.MessagesOut
	s.MessagesIn += o.MessagesIn
	s.DatagramsOut += o.DatagramsOut
	s.BytesOut += o.BytesOut
	s.DatagramsIn += o.DatagramsIn
	s.BytesIn += o.BytesIn
	s.Published += o.Published
	s.Delivered += o.Delivered
	s.Chunks += o.Chunks
	s.Reassembled += o.Reassembled
	s.Duplicates += o.Duplicates
	s.Backpressure += o.Backpressure
	s.FilterErrors += o.FilterErrors
	s.LogErrors += o.LogErrors
	s.LogEvicted += o.LogEvicted
	s.Uncached += o.Uncached
	s.AESessions += o.AESessions
	s.AEFailures += o.AEFailures
	s.AEMissing += o.AEMissing
	s.AEPushed += o.AEPushed
	s.AEBytesOut += o.AEBytesOut
	s.AEBytesIn += o.AEBytesIn
	s.MoresOut += o.MoresOut
	s.Repulls += o.Repulls
	s.RoundPullsSkipped += o.RoundPullsSkipped
	s.MoresIgnored += o.MoresIgnored
	s.AERepairsDropped += o.AERepairsDropped
	s.Parked += o.Parked
	s.ParkRefused += o.ParkRefused
	s.ParkExpired += o.ParkExpired
	s.ParkedSends += o.ParkedSends
	s.ParkCut += o.ParkCut
	s.HintsOut += o.HintsOut
	s.HintsIn += o.HintsIn
	s.HintsIgnored += o.HintsIgnored
	s.Grafts += o.Grafts
	s.Reciprocated += o.Reciprocated
	s.Prunes += o.Prunes
	for r := range s.Dropped {
		s.Dropped[r] += o.Dropped[r]
	}

	s.CacheMessages += o.CacheMessages
	s.CacheBytes += o.CacheBytes
	s.Origins += o.Origins
	s.PartialMessages += o.PartialMessages
	s.AERepairsQueued += o.AERepairsQueued
	s.AERunning += o.AERunning
	s.PartialBytes += o.PartialBytes
	s.ParkedPulls += o.ParkedPulls
	s.Subscriptions += o.Subscriptions
}

// Sub subtracts every counter of o from s and leaves s's gauges: with o an
// earlier snapshot of the same cores, s then counts what they did since,
// and describes them now.
func (s *Stats) Sub(o Stats) {
	s.Rounds -= o.Rounds
	s.PullsSent -= o.PullsSent
	s.PullBytesOut -= o.PullBytesOut
	s.PullsIn -= o.PullsIn
	s.AnswerDatagramsOut -= o.AnswerDatagramsOut
	s.MessagesOut -= o.MessagesOut
	s.MessagesIn -= o.MessagesIn
	s.DatagramsOut -= o.DatagramsOut
	s.BytesOut -= o.BytesOut
	s.DatagramsIn -= o.DatagramsIn
	s.BytesIn -= o.BytesIn
	s.Published -= o.Published
	s.Delivered -= o.Delivered
	s.Chunks -= o.Chunks
	s.Reassembled -= o.Reassembled
	s.Duplicates -= o.Duplicates
	s.Backpressure -= o.Backpressure
	s.FilterErrors -= o.FilterErrors
	s.LogErrors -= o.LogErrors
	s.LogEvicted -= o.LogEvicted
	s.Uncached -= o.Uncached
	s.AESessions -= o.AESessions
	s.AEFailures -= o.AEFailures
	s.AEMissing -= o.AEMissing
	s.AEPushed -= o.AEPushed
	s.AEBytesOut -= o.AEBytesOut
	s.AEBytesIn -= o.AEBytesIn
	s.MoresOut -= o.MoresOut
	s.Repulls -= o.Repulls
	s.RoundPullsSkipped -= o.RoundPullsSkipped
	s.MoresIgnored -= o.MoresIgnored
	s.AERepairsDropped -= o.AERepairsDropped
	s.Parked -= o.Parked
	s.ParkRefused -= o.ParkRefused
	s.ParkExpired -= o.ParkExpired
	s.ParkedSends -= o.ParkedSends
	s.ParkCut -= o.ParkCut
	s.HintsOut -= o.HintsOut
	s.HintsIn -= o.HintsIn
	s.HintsIgnored -= o.HintsIgnored
	s.Grafts -= o.Grafts
	s.Reciprocated -= o.Reciprocated
	s.Prunes -= o.Prunes
	for r := range s.Dropped {
		s.Dropped[r] -= o.Dropped[r]
	}
}
